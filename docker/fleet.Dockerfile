# Fleet server image: VDA 5050 fleet server (REST API, dashboard, dispatch). No ROS needed.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1
WORKDIR /opt/kpai
COPY requirements/ requirements/
# hadolint ignore=DL3013
RUN pip install --no-cache-dir -c requirements/constraints.txt \
      pydantic fastapi uvicorn paho-mqtt 'psycopg[binary]' pyyaml numpy opencv-python-headless
COPY src/kpai_fleet/kpai_fleet/ /opt/kpai/kpai_fleet/
ENV PYTHONPATH=/opt/kpai
EXPOSE 8080
USER 65534
CMD ["python", "-m", "kpai_fleet.server_cli", "serve", "--host", "0.0.0.0", "--port", "8080"]

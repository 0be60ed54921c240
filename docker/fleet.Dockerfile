# Fleet server image: VDA 5050 fleet server (REST API, dashboard, dispatch). No ROS needed.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1
WORKDIR /opt/kpai
COPY requirements/ requirements/
# hadolint ignore=DL3013
RUN pip install --no-cache-dir -c requirements/constraints.txt \
      pydantic fastapi uvicorn paho-mqtt 'psycopg[binary]' pyyaml numpy opencv-python-headless
COPY src/kpai_fleet/kpai_fleet/ /opt/kpai/kpai_fleet/
# the simulated factory's stations and map; mount your site's file over /opt/kpai/config
COPY src/kpai_bringup/config/fleet_server_sim.yaml /opt/kpai/config/fleet_server.yaml
COPY src/kpai_bringup/maps/ /opt/kpai/maps/
ENV PYTHONPATH=/opt/kpai
# mount point of the mqtt-secrets volume: a new volume takes this owner (compose runs the
# secrets, fleet and mosquitto services as uid 1883, the eclipse-mosquitto image's user)
RUN mkdir -m 0700 /secrets && chown 1883:1883 /secrets
EXPOSE 8080
USER 65534
# 0.0.0.0 inside the container only; compose publishes the port on 127.0.0.1
CMD ["python", "-m", "kpai_fleet.cli", "serve", "--config", "/opt/kpai/config/fleet_server.yaml", \
     "--host", "0.0.0.0", "--port", "8080"]

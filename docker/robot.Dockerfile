# Robot image: the KPAI stack on apt-installed ROS 2 (the official ROS image; Jazzy, the LTS, by
# default: --build-arg ROS_DISTRO=kilted for Kilted), built with colcon against
# /opt/ros/$ROS_DISTRO. The compat interface packages are skipped by scripts/setup.sh because the
# underlay provides tf2_msgs and vision_msgs.
ARG ROS_DISTRO=jazzy
FROM ros:${ROS_DISTRO}-ros-base
ARG ROS_DISTRO

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    KPAI_SKIP_APT=1 \
    MUJOCO_GL=egl \
    FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       python3-venv python3-pip ros-${ROS_DISTRO}-vision-msgs ros-${ROS_DISTRO}-tf2-msgs \
       libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 mosquitto \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/kpai
COPY requirements/ requirements/
COPY scripts/ scripts/
COPY src/ src/
COPY bin/ bin/
COPY Makefile pyproject.toml ./

RUN . /opt/ros/${ROS_DISTRO}/setup.sh && bash scripts/setup.sh

COPY docker/entrypoint.sh /entrypoint.sh
ENTRYPOINT ["/entrypoint.sh"]
CMD ["kpai", "launch", "kpai_bringup", "robot.launch.yaml"]

#!/usr/bin/env bash
# Source the ROS underlay and the workspace, then run the command.
set -e
# shellcheck disable=SC1091
source "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
# shellcheck disable=SC1091
source /opt/kpai/env.sh
exec "$@"

"""map_server: load a map_server-format YAML map and publish it latched on /map."""

from __future__ import annotations

from pathlib import Path

from nav_msgs.msg import OccupancyGrid
from rclpy.node import Node

from .conversions import grid_to_msg
from .errors import ConfigError
from .mapio import load_map
from .node_util import LATCHED, declare, run_node

__all__ = ['MapServer', 'main']


class MapServer(Node):
    """Publish one static map (transient-local, depth 1) so late subscribers get it."""

    def __init__(self) -> None:
        super().__init__('map_server')
        path = declare(self, 'yaml_filename', '', 'map_server-format YAML file of the map')
        frame = declare(self, 'frame_id', 'map', 'frame of the published map')
        topic = declare(self, 'topic', '/map', 'topic the map is published on')
        if not path:
            raise ConfigError('parameter yaml_filename is required')
        grid = load_map(Path(path))
        self.grid = grid
        self.pub = self.create_publisher(OccupancyGrid, topic, LATCHED)
        msg = grid_to_msg(grid, self.get_clock().now().to_msg())
        msg.header.frame_id = frame
        self.pub.publish(msg)
        self.get_logger().info(
            f'published {grid.width}x{grid.height} map at {grid.resolution} m/cell from {path} '
            f'on {self.pub.topic_name}')


def main(args: list[str] | None = None) -> int:
    """Run the map server."""
    return run_node(MapServer, args)


if __name__ == '__main__':
    raise SystemExit(main())

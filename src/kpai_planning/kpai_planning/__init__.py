"""Map server, costmap, global planner, local controller and mission executor."""

"""Command-line tools (thin CLIs over the ROS-free core)."""

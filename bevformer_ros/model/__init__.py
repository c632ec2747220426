"""BEVFormer in plain PyTorch (no ROS imports)."""

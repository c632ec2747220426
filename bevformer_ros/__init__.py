"""bevformer_ros: online camera-only BEVFormer 3D perception for ROS 2."""

__version__ = "0.1.0"

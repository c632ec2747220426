"""Synthetic six-camera driving scenes: a road, an ego vehicle, nuScenes-class boxes, a pinhole renderer.

ROS-free (numpy only). `bevformer_ros.tools.synth` writes a scene as a rosbag2 in the node's topic layout.

Frames: `world` (= odom: x east, y north, z up, ground at z = 0), `base_link` (the ego: rear-axle centre on
the ground, x forward), `LIDAR_TOP` (the model's reference frame, from the rig's lidar2ego) and the camera
optical frames of the rig.
"""

"""nuScenes-style evaluation: detections as a nuScenes results JSON, ground truth as nuScenes tables, and the
official nuscenes-devkit detection metrics (mAP, NDS, TP errors) over them. ROS-free (numpy; the devkit is
imported only by `detection_eval`)."""

# Copyright 2026 The bevformer_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""ament_python package setup: `colcon build` on a ROS 2 machine, `pip install -e .` in a venv."""

from glob import glob

from setuptools import find_packages, setup

package_name = 'bevformer_ros'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*')),
        ('share/' + package_name + '/models', glob('models/*.pth')),
    ],
    # numpy, pyyaml and rclpy come from the ROS distribution (package.xml); torch is the user's
    # own.
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='bevformer_ros maintainers',
    maintainer_email='bevformer_ros@users.noreply.github.com',
    description='Online camera-only 3D detection with BEVFormer for ROS 2',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            # nodes
            'bevformer_node = bevformer_ros.node:main',
            # tools
            'bevformer_check_official = bevformer_ros.tools.check_official:main',
            'bevformer_bench_model = bevformer_ros.tools.bench_model:main',
            'bevformer_bench_node = bevformer_ros.tools.bench_node:main',
            'bevformer_bench_pipeline = bevformer_ros.tools.bench_pipeline:main',
            'bevformer_six_camera_publisher = bevformer_ros.tools.six_camera_publisher:main',
            'bevformer_synth = bevformer_ros.tools.synth:main',
            'bevformer_replay = bevformer_ros.tools.replay:main',
            'bevformer_render = bevformer_ros.tools.render:main',
            'bevformer_demo = bevformer_ros.tools.demo:main',
            'bevformer_soak = bevformer_ros.tools.soak:main',
            'bevformer_nuscenes2bag = bevformer_ros.tools.nuscenes2bag:main',
            'bevformer_infer_bag = bevformer_ros.tools.infer_bag:main',
            'bevformer_eval = bevformer_ros.tools.evaluate:main',
            'bevformer_train = bevformer_ros.tools.train:main',
            'bevformer_export = bevformer_ros.tools.export:main',
        ],
    },
)

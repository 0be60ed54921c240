import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'kpai_sim'


def share(*patterns: str) -> list[tuple[str, list[str]]]:
    """Map files matching patterns to share/<pkg>/<their directory>."""
    out: dict[str, list[str]] = {}
    for pattern in patterns:
        for path in glob(pattern, recursive=True):
            if os.path.isfile(path):
                out.setdefault(f'share/{package_name}/' + path.rsplit('/', 1)[0], []).append(path)
    return sorted(out.items())


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        *share('launch/**/*.yaml', 'config/**/*', 'urdf/**/*', 'worlds/**/*', 'gazebo/**/*'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='KPAI maintainers',
    maintainer_email='maintainers@kpai-stack.org',
    description=('Embedded MuJoCo factory simulation: robots, sensors, people, clock and '
                 'ground truth.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'sim = kpai_sim.sim_node:main',
            'kpai-sim-map = kpai_sim.mapgen:main',
            'kpai-sim-gazebo = kpai_sim.gazebo_export:main',
        ],
    },
)

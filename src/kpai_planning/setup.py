from glob import glob

from setuptools import find_packages, setup

package_name = 'kpai_planning'


def share(*patterns: str) -> list[tuple[str, list[str]]]:
    """Map files matching patterns to share/<pkg>/<their directory>."""
    out: dict[str, list[str]] = {}
    for pattern in patterns:
        for path in glob(pattern, recursive=True):
            if not path.endswith('/'):
                out.setdefault(f'share/{package_name}/' + path.rsplit('/', 1)[0], []).append(path)
    return sorted(out.items())


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        *share('launch/**/*.yaml', 'config/**/*'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='KPAI maintainers',
    maintainer_email='maintainers@kpai-stack.org',
    description='Map server, costmap, global planner, local controller and mission executor.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'map_server = kpai_planning.map_server_node:main',
            'global_planner = kpai_planning.planner_node:main',
            'controller = kpai_planning.controller_node:main',
            'mission_executor = kpai_planning.mission_executor_node:main',
            'kinematic_sim = kpai_planning.kinematic_sim_node:main',
        ],
    },
)

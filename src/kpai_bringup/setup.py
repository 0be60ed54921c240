from glob import glob

from setuptools import find_packages, setup

package_name = 'kpai_bringup'


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
        *share('launch/**/*.yaml', 'launch/**/*.xml', 'config/**/*.yaml', 'config/**/*.xml',
               'maps/*'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='KPAI maintainers',
    maintainer_email='maintainers@kpai-stack.org',
    description='Launch files, parameter sets, robot description, kpai launcher and doctor.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'kpai = kpai_bringup.cli:main',
            'talker = kpai_bringup.demo_nodes:talker_main',
            'listener = kpai_bringup.demo_nodes:listener_main',
            'robot_tf = kpai_bringup.robot_tf_node:main',
            'robot_stack = kpai_bringup.robot_stack:main',
        ],
    },
)

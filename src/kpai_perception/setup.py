from glob import glob

from setuptools import find_packages, setup

package_name = 'kpai_perception'


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
    description=('Camera driver, image conversion, tracking, ground-plane localisation, '
                 'safety monitor and fiducials.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'tracker = kpai_perception.tracker_node:main',
            'object_localizer = kpai_perception.localizer_node:main',
            'safety_monitor = kpai_perception.safety_monitor_node:main',
            'camera_driver = kpai_perception.camera_driver_node:main',
            'annotator = kpai_perception.annotator_node:main',
            'fiducials = kpai_perception.fiducial_node:main',
        ],
    },
)

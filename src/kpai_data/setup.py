import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'kpai_data'


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
        *share('launch/**/*.yaml', 'config/**/*', 'models/**/*'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='KPAI maintainers',
    maintainer_email='maintainers@kpai-stack.org',
    description=('Data feedback loop: MCAP recording and playback, Foxglove live view, '
                 'dataset export, detector training.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'recorder = kpai_data.recorder_node:main',
            'player = kpai_data.player:main',
            'foxglove_bridge = kpai_data.foxglove_node:main',
            'kpai-dataset = kpai_data.dataset:main',
            'kpai-train = kpai_data.train:main',
            'kpai-select = kpai_data.select:main',
            'wander = kpai_data.wander_node:main',
        ],
    },
)

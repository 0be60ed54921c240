from glob import glob

from setuptools import find_packages, setup

package_name = 'kpai_fleet'


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
    package_data={'kpai_fleet.server': ['static/*', 'static/i18n/*']},
    include_package_data=True,
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        *share('launch/**/*.yaml', 'config/**/*'),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='KPAI maintainers',
    maintainer_email='maintainers@kpai-stack.org',
    description=('Robot-side VDA 5050 agent and the fleet server (store, REST API, live '
                 'dashboard, dispatch).'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'fleet_agent = kpai_fleet.agent_node:main',
            'kpai-fleet = kpai_fleet.cli:main',
        ],
    },
)

from setuptools import find_packages, setup

package_name = 'kpai_npu_mobilint'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml', 'README.md']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='KPAI maintainers',
    maintainer_email='maintainers@kpai-stack.org',
    description='Mobilint ARIES/REGULUS backend plug-in for kpai_npu_bridge (MXQ runtime).',
    license='Apache-2.0',
    entry_points={
        'kpai_npu_bridge.backends': [
            'mobilint = kpai_npu_mobilint.backend:MobilintBackend',
        ],
    },
)

from setuptools import find_packages, setup

package_name = 'kpai_npu_furiosa'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml', 'README.md']),
    ],
    install_requires=['setuptools'],
    zip_safe=False,  # the compile worker is run by path from the vendor's environment
    maintainer='KPAI maintainers',
    maintainer_email='maintainers@kpai-stack.org',
    description='FuriosaAI RNGD backend plug-in for kpai_npu_bridge (EDF compilation).',
    license='Apache-2.0',
    entry_points={
        'kpai_npu_bridge.backends': [
            'furiosa-rngd = kpai_npu_furiosa.backend:FuriosaRngdBackend',
        ],
    },
)

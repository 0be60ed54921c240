from glob import glob

from setuptools import find_packages, setup

package_name = 'kpai_npu_bridge'


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
    description=('Inference bridge node with pluggable accelerator backends, model manifests, '
                 'compiled-model cache and certification kit.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'npu_bridge = kpai_npu_bridge.bridge_node:main',
            'kpai-npu = kpai_npu_bridge.cli:main',
        ],
        'kpai_npu_bridge.backends': [
            'onnxruntime = kpai_npu_bridge.backends.onnxruntime_backend:OnnxRuntimeBackend',
            'openvino = kpai_npu_bridge.backends.openvino_backend:OpenVinoBackend',
            'opencv = kpai_npu_bridge.backends.opencv_backend:OpenCvBackend',
        ],
    },
)

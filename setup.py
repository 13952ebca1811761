"""Only what pyproject.toml cannot say: the .pth file installed beside the hepdl package.

hepdl-condor-config.pth: where no HTCondor pool is configured (CONDOR_CONFIG unset and none of
the default configuration files exist) it sets CONDOR_CONFIG=/dev/null at interpreter start,
which is what the htcondor module does itself on import, only without its warning on every
snakemake call (Snakemake imports the HTCondor executor plugin on start-up, whatever the
executor). Where a pool is configured it does nothing.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "hepdl-condor-config.pth"


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(PTH, os.path.join(self.build_lib, PTH))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), os.path.join(self.build_lib, PTH)]

    def get_output_mapping(self) -> dict[str, str]:
        return {**super().get_output_mapping(), os.path.join(self.build_lib, PTH): PTH}


class EditableWheelWithPth(editable_wheel):
    """``pip install -e``: the editable wheel carries the .pth too (through setuptools' strategy
    hook, a private one: should it change, an editable install only lacks the .pth)."""

    def _select_strategy(self, *args, **kwargs):
        strategy = super()._select_strategy(*args, **kwargs)

        class WithPth:
            def __call__(self, wheel, files, mapping):
                strategy(wheel, files, mapping)
                with open(PTH) as f:
                    wheel.writestr(PTH, f.read())

            def __enter__(self):
                strategy.__enter__()
                return self

            def __exit__(self, *exc):
                return strategy.__exit__(*exc)

        return WithPth()


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})

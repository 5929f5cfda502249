"""Print the CMake flags that build llama-cpp-python for this CPU (`make install` passes them as
CMAKE_ARGS).

Where the CPU lists AMX, llama.cpp's GGML_NATIVE=ON build turns on its AMX kernels, and in the
VMs tunechat is tested on those crash (a segfault on the first quantized matrix product). There
this prints the CPU's own instruction sets, AMX left out; elsewhere GGML_NATIVE=ON."""
from __future__ import annotations

from pathlib import Path

# /proc/cpuinfo flag → llama.cpp's CMake option (GGML_<name>=ON), in llama.cpp's order.
OPTIONS = {"avx": "AVX", "avx2": "AVX2", "fma": "FMA", "f16c": "F16C", "bmi2": "BMI2", "avx_vnni": "AVX_VNNI",
           "avx512f": "AVX512", "avx512vbmi": "AVX512_VBMI", "avx512_vnni": "AVX512_VNNI", "avx512_bf16": "AVX512_BF16"}


def cmake_args(cpuinfo: str) -> str:
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []))
    if not any(flag.startswith("amx") for flag in flags):
        return "-DGGML_NATIVE=ON"
    return " ".join(["-DGGML_NATIVE=OFF", *(f"-DGGML_{name}=ON" for flag, name in OPTIONS.items() if flag in flags)])


if __name__ == "__main__":
    info = Path("/proc/cpuinfo")
    print(cmake_args(info.read_text() if info.is_file() else ""))

// The CUDA backend's ops: twins of kernels/cpu/, with the same names, signatures and semantics
// in namespace mb::kernels::cuda, taking device pointers. Host functions declared in plain
// C++ (no CUDA types), so any .cpp file can call them; link kernels_cuda_dep.
//
// Every op has an fp32 form, for checking the GPU kernels against the CPU reference one op at
// a time and as the debugging mode. The training configuration (bf16 precision) adds the bf16
// twins beside them: the matrix products through cuBLASLt with bf16 operands and fp32
// accumulation (matmul.cuh), the attention on tensor cores (attention_bf16.cuh), the bf16
// conversions (bf16.cuh); master weights, gradients and the other ops stay fp32.
//
// Conventions (details in common.cuh): everything runs on the default stream in call order;
// functions that return device-computed values or validate device-resident ids synchronise;
// errors are thrown (std::invalid_argument / std::out_of_range as the CPU twin,
// std::runtime_error for CUDA and cuBLAS failures, naming file and line). Every backward
// accumulates (+=) and is deterministic: no floating-point atomics, so running it twice on the
// same GPU gives bit-identical gradients.
#pragma once

#include "cuda/activation.cuh"
#include "cuda/adamw.cuh"
#include "cuda/attention.cuh"
#include "cuda/attention_bf16.cuh"
#include "cuda/attention_step.cuh"
#include "cuda/bf16.cuh"
#include "cuda/crossentropy.cuh"
#include "cuda/dropout.cuh"
#include "cuda/embedding.cuh"
#include "cuda/layernorm.cuh"
#include "cuda/matmul.cuh"
#include "cuda/residual.cuh"
#include "cuda/short_attention.cuh"

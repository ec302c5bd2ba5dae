// The CUDA backend's ops: twins of kernels/cpu/, with the same names, signatures and semantics
// in namespace mb::kernels::cuda, taking device pointers. Host functions declared in plain
// C++ (no CUDA types), so any .cpp file can call them; link kernels_cuda_dep.
//
// This first part is fp32 throughout, for checking the GPU kernels against the CPU reference
// one op at a time. The training configuration of the project design (bf16 activations and
// matrix products with fp32 accumulation, fp32 master weights, cuBLASLt, a fused attention)
// comes later, beside these functions.
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
#include "cuda/attention_step.cuh"
#include "cuda/bf16.cuh"
#include "cuda/crossentropy.cuh"
#include "cuda/dropout.cuh"
#include "cuda/embedding.cuh"
#include "cuda/layernorm.cuh"
#include "cuda/matmul.cuh"
#include "cuda/residual.cuh"
#include "cuda/short_attention.cuh"

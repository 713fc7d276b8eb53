// simdattn/simdattn.hpp — umbrella header: the whole public C++ API.
#pragma once

#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "simdattn/gemm.hpp"
#include "simdattn/gpt2.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/runtime.hpp"
#include "simdattn/safetensors.hpp"
#include "simdattn/softmax.hpp"
#include "simdattn/tensor.hpp"
#include "simdattn/version.h"

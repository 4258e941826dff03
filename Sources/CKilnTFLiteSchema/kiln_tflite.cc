// The C interface of KilnTFLiteSchema over the flatc-generated code (kiln_tflite_generated.h).
// Builder and Verifier are header-only parts of libflatbuffers: nothing to link.
#include "kiln_tflite.h"

#include <cstring>
#include <map>
#include <new>
#include <string>
#include <tuple>
#include <vector>

#include "kiln_tflite_generated.h"

namespace fb = flatbuffers;
using namespace kiln_tflite;

bool kiln_tflite_verify(const uint8_t *data, size_t size) {
    if (data == nullptr || size < 8 || size >= FLATBUFFERS_MAX_BUFFER_SIZE) return false;
    // Depth and table-count limits bound the work a hostile file can cause.
    fb::Verifier verifier(data, size, /*max_depth=*/64, /*max_tables=*/4'000'000);
    return VerifyModelBuffer(verifier);
}

struct kiln_tflite_builder {
    fb::FlatBufferBuilder fbb;
    std::string error;
    std::vector<fb::Offset<Buffer>> buffers;
    std::vector<fb::Offset<OperatorCode>> codes;
    std::map<std::tuple<int32_t, int32_t, std::string, bool>, uint32_t> codeIndex;
    std::vector<fb::Offset<Tensor>> tensors;
    std::vector<fb::Offset<Operator>> operators;
    std::vector<fb::Offset<SubGraph>> subgraphs;
    std::vector<fb::Offset<Metadata>> metadata;
    std::vector<fb::Offset<SignatureDef>> signatures;
    bool finished = false;

    explicit kiln_tflite_builder(size_t initial) : fbb(initial > 1024 ? initial : 1024) {}

    /// False (with an error) when the builder already failed or finished.
    bool usable() {
        if (!error.empty()) return false;
        if (finished) {
            error = "the model is already finished";
            return false;
        }
        return true;
    }

    /// False (with an error) when `extra` more bytes would pass the flatbuffers 2 GB limit.
    bool fits(size_t extra) {
        const size_t limit = FLATBUFFERS_MAX_BUFFER_SIZE - (1u << 20);
        if (extra > limit || fbb.GetSize() > limit - extra) {
            error = "the model would exceed the 2 GB flatbuffer limit";
            return false;
        }
        return true;
    }

    fb::Offset<fb::String> string(const char *s) { return s ? fbb.CreateString(s) : 0; }
};

/// Runs `body`, turning an allocation failure into the builder's error.
template <typename R, typename F>
static R guarded(kiln_tflite_builder *b, R failure, F body) {
    if (b == nullptr) return failure;
    if (!b->usable()) return failure;
    try {
        return body();
    } catch (const std::bad_alloc &) {
        b->error = "out of memory while building the model";
    } catch (const std::exception &e) {
        b->error = std::string("building the model failed: ") + e.what();
    }
    return failure;
}

kiln_tflite_builder *kiln_tflite_builder_create(size_t initial_size) {
    try {
        auto *b = new kiln_tflite_builder(initial_size);
        b->buffers.push_back(CreateBuffer(b->fbb));
        return b;
    } catch (const std::bad_alloc &) {
        return nullptr;
    }
}

void kiln_tflite_builder_destroy(kiln_tflite_builder *builder) { delete builder; }

const char *kiln_tflite_builder_error(const kiln_tflite_builder *builder) {
    if (builder == nullptr) return "no builder";
    return builder->error.empty() ? nullptr : builder->error.c_str();
}

uint32_t kiln_tflite_add_buffer(kiln_tflite_builder *b, const void *data, size_t size) {
    return guarded(b, KILN_TFLITE_INVALID_INDEX, [&]() -> uint32_t {
        if (!b->fits(size + 64)) return KILN_TFLITE_INVALID_INDEX;
        fb::Offset<fb::Vector<uint8_t>> vector = 0;
        if (size > 0) {
            if (data == nullptr) {
                b->error = "buffer data is NULL";
                return KILN_TFLITE_INVALID_INDEX;
            }
            b->fbb.ForceVectorAlignment(size, sizeof(uint8_t), 16);
            vector = b->fbb.CreateVector(static_cast<const uint8_t *>(data), size);
        }
        b->buffers.push_back(CreateBuffer(b->fbb, vector));
        return static_cast<uint32_t>(b->buffers.size() - 1);
    });
}

uint32_t kiln_tflite_add_external_buffer(kiln_tflite_builder *b, uint64_t offset, uint64_t size) {
    return guarded(b, KILN_TFLITE_INVALID_INDEX, [&]() -> uint32_t {
        b->buffers.push_back(CreateBuffer(b->fbb, 0, offset, size));
        return static_cast<uint32_t>(b->buffers.size() - 1);
    });
}

uint32_t kiln_tflite_add_tensor(
    kiln_tflite_builder *b, const int32_t *shape, size_t rank, int8_t type, uint32_t buffer, const char *name,
    const kiln_tflite_quantization *q) {
    return guarded(b, KILN_TFLITE_INVALID_INDEX, [&]() -> uint32_t {
        if (!b->fits(rank * 4 + (q ? q->count * 12 : 0) + (name ? strlen(name) : 0) + 128)) {
            return KILN_TFLITE_INVALID_INDEX;
        }
        if ((rank > 0 && shape == nullptr) || (q && q->count > 0 && (q->scale == nullptr || q->zero_point == nullptr))) {
            b->error = "tensor shape or quantization arrays are NULL";
            return KILN_TFLITE_INVALID_INDEX;
        }
        auto shapeVector = b->fbb.CreateVector(shape, rank);
        auto nameString = b->string(name);
        fb::Offset<QuantizationParameters> quant = 0;
        if (q) {
            auto scale = b->fbb.CreateVector(q->scale, q->count);
            auto zero = b->fbb.CreateVector(q->zero_point, q->count);
            quant = CreateQuantizationParameters(b->fbb, 0, 0, scale, zero, q->quantized_dimension);
        }
        b->tensors.push_back(CreateTensor(
            b->fbb, shapeVector, static_cast<TensorType>(type), buffer, nameString, quant, false, 0,
            /*has_rank=*/true));
        return static_cast<uint32_t>(b->tensors.size() - 1);
    });
}

/// The options table for `o`, or a null offset with an error for a type outside the schema.
static bool makeOptions(kiln_tflite_builder *b, const kiln_tflite_options &o, fb::Offset<void> &out) {
    auto &f = b->fbb;
    auto padding = static_cast<Padding>(o.padding);
    auto act = static_cast<ActivationFunctionType>(o.activation);
    switch (static_cast<BuiltinOptions>(o.type)) {
    case BuiltinOptions::NONE: out = 0; return true;
    case BuiltinOptions::Conv2DOptions:
        out = CreateConv2DOptions(f, padding, o.stride_w, o.stride_h, act, o.dilation_w, o.dilation_h).Union();
        return true;
    case BuiltinOptions::DepthwiseConv2DOptions:
        out = CreateDepthwiseConv2DOptions(
                  f, padding, o.stride_w, o.stride_h, o.depth_multiplier, act, o.dilation_w, o.dilation_h)
                  .Union();
        return true;
    case BuiltinOptions::Pool2DOptions:
        out = CreatePool2DOptions(f, padding, o.stride_w, o.stride_h, o.filter_w, o.filter_h, act).Union();
        return true;
    case BuiltinOptions::FullyConnectedOptions:
        out = CreateFullyConnectedOptions(
                  f, act, static_cast<FullyConnectedOptionsWeightsFormat>(o.weights_format), o.keep_dims,
                  o.asymmetric_quantize_inputs)
                  .Union();
        return true;
    case BuiltinOptions::SoftmaxOptions: out = CreateSoftmaxOptions(f, o.beta).Union(); return true;
    case BuiltinOptions::ConcatenationOptions: out = CreateConcatenationOptions(f, o.axis, act).Union(); return true;
    case BuiltinOptions::AddOptions: out = CreateAddOptions(f, act, o.pot_scale_int16).Union(); return true;
    case BuiltinOptions::SubOptions: out = CreateSubOptions(f, act, o.pot_scale_int16).Union(); return true;
    case BuiltinOptions::MulOptions: out = CreateMulOptions(f, act).Union(); return true;
    case BuiltinOptions::ReshapeOptions: {
        fb::Offset<fb::Vector<int32_t>> shape = 0;
        if (o.has_new_shape) {
            if (o.new_shape_count > 0 && o.new_shape == nullptr) {
                b->error = "reshape new_shape is NULL";
                return false;
            }
            shape = f.CreateVector(o.new_shape, o.new_shape_count);
        }
        out = CreateReshapeOptions(f, shape).Union();
        return true;
    }
    case BuiltinOptions::PadOptions: out = CreatePadOptions(f).Union(); return true;
    case BuiltinOptions::PadV2Options: out = CreatePadV2Options(f).Union(); return true;
    case BuiltinOptions::TransposeOptions: out = CreateTransposeOptions(f).Union(); return true;
    case BuiltinOptions::ReducerOptions: out = CreateReducerOptions(f, o.keep_dims).Union(); return true;
    case BuiltinOptions::SplitOptions: out = CreateSplitOptions(f, o.num_splits).Union(); return true;
    case BuiltinOptions::SplitVOptions: out = CreateSplitVOptions(f, o.num_splits).Union(); return true;
    case BuiltinOptions::StridedSliceOptions:
        out = CreateStridedSliceOptions(
                  f, o.begin_mask, o.end_mask, o.ellipsis_mask, o.new_axis_mask, o.shrink_axis_mask, o.offset)
                  .Union();
        return true;
    case BuiltinOptions::DequantizeOptions: out = CreateDequantizeOptions(f).Union(); return true;
    case BuiltinOptions::QuantizeOptions: out = CreateQuantizeOptions(f).Union(); return true;
    case BuiltinOptions::MaximumMinimumOptions: out = CreateMaximumMinimumOptions(f).Union(); return true;
    case BuiltinOptions::HardSwishOptions: out = CreateHardSwishOptions(f).Union(); return true;
    }
    b->error = "builtin options type " + std::to_string(o.type) + " is not in Kiln's TFLite schema";
    return false;
}

uint32_t kiln_tflite_add_operator(
    kiln_tflite_builder *b, int32_t builtin_code, int32_t version, const char *custom_code, const int32_t *inputs,
    size_t input_count, const int32_t *outputs, size_t output_count, const kiln_tflite_options *options) {
    return guarded(b, KILN_TFLITE_INVALID_INDEX, [&]() -> uint32_t {
        if (!b->fits((input_count + output_count) * 4 + 512)) return KILN_TFLITE_INVALID_INDEX;
        if ((input_count > 0 && inputs == nullptr) || (output_count > 0 && outputs == nullptr)) {
            b->error = "operator input or output array is NULL";
            return KILN_TFLITE_INVALID_INDEX;
        }
        auto key = std::make_tuple(builtin_code, version, std::string(custom_code ? custom_code : ""), custom_code != nullptr);
        uint32_t opcode;
        auto found = b->codeIndex.find(key);
        if (found != b->codeIndex.end()) {
            opcode = found->second;
        } else {
            const int32_t placeholder = static_cast<int32_t>(BuiltinOperator::PLACEHOLDER_FOR_GREATER_OP_CODES);
            auto deprecated = static_cast<int8_t>(builtin_code >= 0 && builtin_code < placeholder ? builtin_code : placeholder);
            auto code = CreateOperatorCode(
                b->fbb, deprecated, b->string(custom_code), version, static_cast<BuiltinOperator>(builtin_code));
            b->codes.push_back(code);
            opcode = static_cast<uint32_t>(b->codes.size() - 1);
            b->codeIndex[key] = opcode;
        }
        fb::Offset<void> optionsTable = 0;
        uint8_t optionsType = 0;
        if (options) {
            if (!makeOptions(b, *options, optionsTable)) return KILN_TFLITE_INVALID_INDEX;
            optionsType = options->type;
        }
        auto in = b->fbb.CreateVector(inputs, input_count);
        auto out = b->fbb.CreateVector(outputs, output_count);
        b->operators.push_back(
            CreateOperator(b->fbb, opcode, in, out, static_cast<BuiltinOptions>(optionsType), optionsTable));
        return static_cast<uint32_t>(b->operators.size() - 1);
    });
}

uint32_t kiln_tflite_end_subgraph(
    kiln_tflite_builder *b, const int32_t *inputs, size_t input_count, const int32_t *outputs, size_t output_count,
    const char *name) {
    return guarded(b, KILN_TFLITE_INVALID_INDEX, [&]() -> uint32_t {
        if (!b->fits((input_count + output_count + b->tensors.size() + b->operators.size()) * 4 + 512)) {
            return KILN_TFLITE_INVALID_INDEX;
        }
        if ((input_count > 0 && inputs == nullptr) || (output_count > 0 && outputs == nullptr)) {
            b->error = "subgraph input or output array is NULL";
            return KILN_TFLITE_INVALID_INDEX;
        }
        auto tensors = b->fbb.CreateVector(b->tensors);
        auto in = b->fbb.CreateVector(inputs, input_count);
        auto out = b->fbb.CreateVector(outputs, output_count);
        auto ops = b->fbb.CreateVector(b->operators);
        b->subgraphs.push_back(CreateSubGraph(b->fbb, tensors, in, out, ops, b->string(name)));
        b->tensors.clear();
        b->operators.clear();
        return static_cast<uint32_t>(b->subgraphs.size() - 1);
    });
}

bool kiln_tflite_add_metadata(kiln_tflite_builder *b, const char *name, uint32_t buffer) {
    return guarded(b, false, [&]() -> bool {
        b->metadata.push_back(CreateMetadata(b->fbb, b->string(name), buffer));
        return true;
    });
}

static fb::Offset<fb::Vector<fb::Offset<TensorMap>>> tensorMaps(
    kiln_tflite_builder *b, const char *const *names, const uint32_t *tensors, size_t count) {
    std::vector<fb::Offset<TensorMap>> maps;
    for (size_t i = 0; i < count; i++) maps.push_back(CreateTensorMap(b->fbb, b->string(names[i]), tensors[i]));
    return b->fbb.CreateVector(maps);
}

bool kiln_tflite_add_signature(
    kiln_tflite_builder *b, const char *key, uint32_t subgraph, const char *const *input_names,
    const uint32_t *input_tensors, size_t input_count, const char *const *output_names, const uint32_t *output_tensors,
    size_t output_count) {
    return guarded(b, false, [&]() -> bool {
        if ((input_count > 0 && (input_names == nullptr || input_tensors == nullptr)) ||
            (output_count > 0 && (output_names == nullptr || output_tensors == nullptr))) {
            b->error = "signature arrays are NULL";
            return false;
        }
        auto in = tensorMaps(b, input_names, input_tensors, input_count);
        auto out = tensorMaps(b, output_names, output_tensors, output_count);
        b->signatures.push_back(CreateSignatureDef(b->fbb, in, out, b->string(key), subgraph));
        return true;
    });
}

bool kiln_tflite_finish(
    kiln_tflite_builder *b, uint32_t version, const char *description, const uint8_t **data, size_t *size) {
    return guarded(b, false, [&]() -> bool {
        if (data == nullptr || size == nullptr) {
            b->error = "finish needs data and size pointers";
            return false;
        }
        if (!b->tensors.empty() || !b->operators.empty()) {
            b->error = "a subgraph was started but not ended";
            return false;
        }
        if (!b->fits((b->codes.size() + b->subgraphs.size() + b->buffers.size()) * 4 + 4096)) return false;
        auto codes = b->fbb.CreateVector(b->codes);
        auto subgraphs = b->fbb.CreateVector(b->subgraphs);
        auto desc = b->string(description);
        auto buffers = b->fbb.CreateVector(b->buffers);
        auto metadata = b->metadata.empty() ? 0 : b->fbb.CreateVector(b->metadata);
        auto signatures = b->signatures.empty() ? 0 : b->fbb.CreateVector(b->signatures);
        auto model = CreateModel(b->fbb, version, codes, subgraphs, desc, buffers, 0, metadata, signatures);
        FinishModelBuffer(b->fbb, model);
        b->finished = true;
        *data = b->fbb.GetBufferPointer();
        *size = b->fbb.GetSize();
        return true;
    });
}

// serving_check: loads a SavedModel the way TF Serving does and, on request, runs one signature.
//
// TF Serving loads a model version with tensorflow::LoadSavedModel (tag "serve") and answers a
// Predict request by feeding the SignatureDef's input tensor names to bundle.session->Run and
// fetching its output tensor names. This program does exactly that, so an export it can load and
// run is one TF Serving can serve, without a TF Serving binary.
//
// Usage:
//   serving_check VERSION_DIR [--run SIGNATURE --input SPEC...]...
//
//   VERSION_DIR  a SavedModel directory, e.g. exports/vae/1.
//   --run SIG    runs signature SIG; every one of its inputs must be given with --input. Several
//                --run groups are several requests, run one after another on the one loaded model
//                (as a server answers them): a failed request does not stop the next.
//   --input SPEC NAME=DTYPE:SHAPE:VALUES, where DTYPE is float32 or int64, SHAPE a comma list of
//                sizes (empty for a scalar) and VALUES a comma list of the values in row-major
//                order, or fill=X to set every element to X. Examples:
//                  --input seed=int64:4:0,1,2,3
//                  --input images=float32:2,8,8,1:fill=0.5
//                  --input t=float32::0.25
//
// Output, on stdout, one record per line, fields separated by tabs. SHAPE is a JSON list with -1
// for an unknown size, or null for an unknown rank; signatures and tensors are sorted by name.
//   signature  SIG  METHOD_NAME
//   input      SIG  NAME  DTYPE  SHAPE
//   output     SIG  NAME  DTYPE  SHAPE
// and with --run, for each request in turn: its number (0 for the first) and then either, for each
// output tensor of SIG (VALUES a comma list, floats printed with enough digits to read back the exact
// value), a result record, or one error record with the status the session returned (tabs and line
// breaks in it replaced by spaces; it is also written to stderr):
//   request    SIG  INDEX
//   result     SIG  NAME  DTYPE  SHAPE  VALUES
//   error      SIG  STATUS
//
// Exit status: 0 on success, 1 when the SavedModel does not load or a request fails to run,
// 2 on a usage error, a bad --input, an unknown signature, or one this program cannot run (sparse
// tensors, or outputs of a dtype it cannot print).

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tensorflow/cc/saved_model/constants.h"
#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"
#include "tensorflow/core/public/session.h"
#include "tensorflow/core/public/session_options.h"

namespace {

constexpr int kLoadOrRunFailed = 1;
constexpr int kUsageError = 2;

// tensorflow/cc/saved_model/tag_constants.h is not shipped with the wheel's headers.
constexpr char kServeTag[] = "serve";

// Thrown for anything the caller got wrong; main turns it into a message and kUsageError, with the
// usage text when the command line itself was malformed.
struct UsageError {
  std::string message;
  bool show_usage = true;
};

const char kUsage[] =
    "usage: serving_check VERSION_DIR [--run SIGNATURE --input NAME=DTYPE:SHAPE:VALUES...]\n"
    "  DTYPE: float32 or int64; SHAPE: comma list of sizes, empty for a scalar;\n"
    "  VALUES: comma list in row-major order, or fill=X.\n"
    "  e.g. --input seed=int64:4:0,1,2,3 --input images=float32:2,8,8,1:fill=0.5\n";

// Python's names (tf.DType.name), so that the output compares directly with the Python side.
std::string DtypeName(tensorflow::DataType dtype) {
  switch (dtype) {
    case tensorflow::DT_FLOAT: return "float32";
    case tensorflow::DT_DOUBLE: return "float64";
    case tensorflow::DT_HALF: return "float16";
    case tensorflow::DT_BFLOAT16: return "bfloat16";
    case tensorflow::DT_INT8: return "int8";
    case tensorflow::DT_INT16: return "int16";
    case tensorflow::DT_INT32: return "int32";
    case tensorflow::DT_INT64: return "int64";
    case tensorflow::DT_UINT8: return "uint8";
    case tensorflow::DT_BOOL: return "bool";
    case tensorflow::DT_STRING: return "string";
    default: return tensorflow::DataTypeString(dtype);
  }
}

std::string ShapeJson(const tensorflow::TensorShapeProto& shape) {
  if (shape.unknown_rank()) return "null";
  std::string json = "[";
  for (int i = 0; i < shape.dim_size(); ++i) {
    if (i > 0) json += ",";
    json += std::to_string(shape.dim(i).size());
  }
  return json + "]";
}

std::string ShapeJson(const tensorflow::TensorShape& shape) {
  tensorflow::TensorShapeProto proto;
  shape.AsProto(&proto);
  return ShapeJson(proto);
}

// protobuf maps iterate in no particular order; sorting keeps the output stable.
template <typename Value>
std::vector<std::string> SortedKeys(const google::protobuf::Map<std::string, Value>& map) {
  std::vector<std::string> keys;
  for (const auto& entry : map) keys.push_back(entry.first);
  std::sort(keys.begin(), keys.end());
  return keys;
}

// The signatures a client can call: the SavedModel also stores its init and train ops as
// signatures, which are the loader's bookkeeping rather than endpoints.
std::vector<std::string> ServingSignatureNames(const tensorflow::SavedModelBundle& bundle) {
  std::vector<std::string> names;
  for (const std::string& name : SortedKeys(bundle.GetSignatures())) {
    if (name != tensorflow::kSavedModelInitOpSignatureKey && name != tensorflow::kSavedModelTrainOpSignatureKey) {
      names.push_back(name);
    }
  }
  return names;
}

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  if (text.empty()) return parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

// One parsed --input: the signature input it feeds and its value.
struct Input {
  std::string name;
  tensorflow::Tensor tensor;
};

// strtof and strtoll skip leading blanks and stop at the first bad character; both are errors here.
template <typename T>
T ParseNumber(const std::string& text, const std::string& context) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  T value;
  if constexpr (std::is_same_v<T, float>) {
    value = std::strtof(begin, &end);
  } else {
    value = static_cast<T>(std::strtoll(begin, &end, 10));
  }
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])) || *end != '\0' || errno == ERANGE) {
    throw UsageError{context + ": '" + text + "' is not a valid " +
                     (std::is_same_v<T, float> ? "float32" : "int64") + " value"};
  }
  return value;
}

template <typename T>
void FillTensor(const std::string& values, const std::string& context, tensorflow::Tensor* tensor) {
  auto flat = tensor->flat<T>();
  const int64_t count = flat.size();
  const std::string fill_prefix = "fill=";
  if (values.compare(0, fill_prefix.size(), fill_prefix) == 0) {
    const T value = ParseNumber<T>(values.substr(fill_prefix.size()), context);
    for (int64_t i = 0; i < count; ++i) flat(i) = value;
    return;
  }
  const std::vector<std::string> items = Split(values, ',');
  if (static_cast<int64_t>(items.size()) != count) {
    throw UsageError{context + ": the shape " + ShapeJson(tensor->shape()) + " holds " + std::to_string(count) +
                     " values but " + std::to_string(items.size()) + " were given (or use fill=X)"};
  }
  for (int64_t i = 0; i < count; ++i) flat(i) = ParseNumber<T>(items[i], context);
}

// NAME=DTYPE:SHAPE:VALUES, see the usage at the top of the file.
Input ParseInput(const std::string& spec) {
  const std::string context = "--input " + spec;
  const size_t equals = spec.find('=');
  const size_t first_colon = spec.find(':', equals == std::string::npos ? 0 : equals);
  const size_t second_colon = first_colon == std::string::npos ? std::string::npos : spec.find(':', first_colon + 1);
  if (equals == std::string::npos || equals == 0 || second_colon == std::string::npos) {
    throw UsageError{context + ": expected NAME=DTYPE:SHAPE:VALUES, e.g. seed=int64:4:0,1,2,3"};
  }
  Input input;
  input.name = spec.substr(0, equals);
  const std::string dtype = spec.substr(equals + 1, first_colon - equals - 1);
  const std::string shape_text = spec.substr(first_colon + 1, second_colon - first_colon - 1);
  const std::string values = spec.substr(second_colon + 1);

  tensorflow::TensorShape shape;
  for (const std::string& item : Split(shape_text, ',')) {
    const int64_t size = ParseNumber<int64_t>(item, context + " (shape)");
    // AddDimWithStatus refuses negative sizes and shapes too large to hold.
    const absl::Status status = shape.AddDimWithStatus(size);
    if (!status.ok()) throw UsageError{context + ": bad shape: " + std::string(status.message())};
  }
  if (dtype == "float32") {
    input.tensor = tensorflow::Tensor(tensorflow::DT_FLOAT, shape);
    FillTensor<float>(values, context, &input.tensor);
  } else if (dtype == "int64") {
    input.tensor = tensorflow::Tensor(tensorflow::DT_INT64, shape);
    FillTensor<int64_t>(values, context, &input.tensor);
  } else {
    throw UsageError{context + ": unsupported dtype '" + dtype + "' (use float32 or int64)"};
  }
  return input;
}

void PrintSignatures(const tensorflow::SavedModelBundle& bundle) {
  const auto& signatures = bundle.GetSignatures();
  for (const std::string& name : ServingSignatureNames(bundle)) {
    const tensorflow::SignatureDef& signature = signatures.at(name);
    std::printf("signature\t%s\t%s\n", name.c_str(), signature.method_name().c_str());
    for (const auto& [kind, tensors] : {std::pair{"input", &signature.inputs()}, std::pair{"output", &signature.outputs()}}) {
      for (const std::string& key : SortedKeys(*tensors)) {
        const tensorflow::TensorInfo& info = tensors->at(key);
        std::printf("%s\t%s\t%s\t%s\t%s\n", kind, name.c_str(), key.c_str(), DtypeName(info.dtype()).c_str(),
                    ShapeJson(info.tensor_shape()).c_str());
      }
    }
  }
}

template <typename T>
std::string FormatValues(const tensorflow::Tensor& tensor, const char* format) {
  std::string text;
  char buffer[64];
  auto flat = tensor.flat<T>();
  for (int64_t i = 0; i < flat.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      std::snprintf(buffer, sizeof(buffer), format, static_cast<double>(flat(i)));
    } else {
      std::snprintf(buffer, sizeof(buffer), format, static_cast<long long>(flat(i)));
    }
    if (i > 0) text += ",";
    text += buffer;
  }
  return text;
}

bool CanPrint(tensorflow::DataType dtype) {
  switch (dtype) {
    case tensorflow::DT_FLOAT:
    case tensorflow::DT_DOUBLE:
    case tensorflow::DT_INT32:
    case tensorflow::DT_INT64:
    case tensorflow::DT_UINT8:
    case tensorflow::DT_BOOL:
      return true;
    default:
      return false;
  }
}

// %.9g reads back to the same float32, %.17g to the same float64. Only for dtypes CanPrint accepts.
std::string FormatValues(const tensorflow::Tensor& tensor) {
  switch (tensor.dtype()) {
    case tensorflow::DT_FLOAT: return FormatValues<float>(tensor, "%.9g");
    case tensorflow::DT_DOUBLE: return FormatValues<double>(tensor, "%.17g");
    case tensorflow::DT_INT32: return FormatValues<int32_t>(tensor, "%lld");
    case tensorflow::DT_INT64: return FormatValues<int64_t>(tensor, "%lld");
    case tensorflow::DT_UINT8: return FormatValues<uint8_t>(tensor, "%lld");
    case tensorflow::DT_BOOL: return FormatValues<bool>(tensor, "%lld");
    default: return "";
  }
}

// Feeds and fetches by the SignatureDef's tensor names, as TF Serving's Predict does.
int RunSignature(const tensorflow::SavedModelBundle& bundle, const std::string& signature_name,
                 const std::vector<Input>& inputs) {
  const std::vector<std::string> names = ServingSignatureNames(bundle);
  if (std::find(names.begin(), names.end(), signature_name) == names.end()) {
    std::string known;
    for (const std::string& name : names) known += (known.empty() ? "" : ", ") + name;
    throw UsageError{"unknown signature '" + signature_name + "'; the SavedModel has: " + known, false};
  }
  const tensorflow::SignatureDef& signature = bundle.GetSignatures().at(signature_name);

  std::map<std::string, const Input*> given;
  for (const Input& input : inputs) {
    if (!given.emplace(input.name, &input).second) throw UsageError{"input '" + input.name + "' is given twice"};
    if (!signature.inputs().contains(input.name)) {
      throw UsageError{"signature '" + signature_name + "' has no input '" + input.name + "'", false};
    }
  }
  std::vector<std::pair<std::string, tensorflow::Tensor>> feeds;
  for (const std::string& key : SortedKeys(signature.inputs())) {
    const tensorflow::TensorInfo& info = signature.inputs().at(key);
    const auto input = given.find(key);
    if (input == given.end()) {
      throw UsageError{"signature '" + signature_name + "' needs input '" + key + "' (" + DtypeName(info.dtype()) +
                       ", shape " + ShapeJson(info.tensor_shape()) + ")", false};
    }
    if (input->second->tensor.dtype() != info.dtype()) {
      throw UsageError{"input '" + key + "' of signature '" + signature_name + "' is " + DtypeName(info.dtype()) +
                       ", not " + DtypeName(input->second->tensor.dtype()), false};
    }
    if (!info.has_name()) {
      throw UsageError{"input '" + key + "' is not a dense tensor; only dense inputs are supported", false};
    }
    feeds.emplace_back(info.name(), input->second->tensor);
  }

  const std::vector<std::string> output_keys = SortedKeys(signature.outputs());
  std::vector<std::string> fetches;
  for (const std::string& key : output_keys) {
    const tensorflow::TensorInfo& info = signature.outputs().at(key);
    if (!info.has_name()) {
      throw UsageError{"output '" + key + "' is not a dense tensor; only dense outputs are supported", false};
    }
    if (!CanPrint(info.dtype())) {
      throw UsageError{"output '" + key + "' is " + DtypeName(info.dtype()) + ", which this program cannot print", false};
    }
    fetches.push_back(info.name());
  }
  std::vector<tensorflow::Tensor> outputs;
  const absl::Status status = bundle.session->Run(feeds, fetches, {}, &outputs);
  if (!status.ok()) {
    std::string record = status.ToString();
    std::replace_if(record.begin(), record.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
    std::printf("error\t%s\t%s\n", signature_name.c_str(), record.c_str());
    std::fprintf(stderr, "serving_check: running signature '%s' failed: %s\n", signature_name.c_str(),
                 status.ToString().c_str());
    return kLoadOrRunFailed;
  }
  for (size_t i = 0; i < output_keys.size(); ++i) {
    std::printf("result\t%s\t%s\t%s\t%s\t%s\n", signature_name.c_str(), output_keys[i].c_str(),
                DtypeName(outputs[i].dtype()).c_str(), ShapeJson(outputs[i].shape()).c_str(),
                FormatValues(outputs[i]).c_str());
  }
  return 0;
}

// One --run group: a signature and the inputs given after it.
struct Request {
  std::string signature;
  std::vector<Input> inputs;
};

int Main(int argc, char** argv) {
  std::string export_dir;
  std::vector<Request> requests;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--run" || arg == "--input") {
      if (i + 1 >= argc) throw UsageError{arg + " needs a value"};
      const std::string value = argv[++i];
      if (arg == "--run") {
        requests.push_back(Request{value, {}});
      } else if (requests.empty()) {
        throw UsageError{"--input given without --run SIGNATURE"};
      } else {
        requests.back().inputs.push_back(ParseInput(value));
      }
    } else if (arg.compare(0, 1, "-") == 0) {
      throw UsageError{"unknown option " + arg};
    } else if (export_dir.empty()) {
      export_dir = arg;
    } else {
      throw UsageError{"expected one VERSION_DIR, got '" + export_dir + "' and '" + arg + "'"};
    }
  }
  if (export_dir.empty()) throw UsageError{"missing VERSION_DIR"};

  tensorflow::SavedModelBundle bundle;
  const absl::Status status = tensorflow::LoadSavedModel(tensorflow::SessionOptions(), tensorflow::RunOptions(),
                                                         export_dir, {kServeTag}, &bundle);
  if (!status.ok()) {
    std::fprintf(stderr, "serving_check: could not load the SavedModel at '%s' with tag '%s': %s\n",
                 export_dir.c_str(), kServeTag, status.ToString().c_str());
    return kLoadOrRunFailed;
  }
  PrintSignatures(bundle);
  int exit_status = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    std::printf("request\t%s\t%zu\n", requests[i].signature.c_str(), i);
    // Flushed, so that if a request kills the process its output still says which one it was.
    std::fflush(stdout);
    if (RunSignature(bundle, requests[i].signature, requests[i].inputs) != 0) exit_status = kLoadOrRunFailed;
  }
  return exit_status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const UsageError& error) {
    std::fflush(stdout);
    std::fprintf(stderr, "serving_check: %s\n%s", error.message.c_str(), error.show_usage ? kUsage : "");
    return kUsageError;
  }
}

// omgen deployment example: load a program written by
// `python -m train export --checkpoint CKPT -o model.ts --format ts,aoti` (any task), run one RGB image.
//
//   omgen_deploy MODEL IMAGE.ppm OUT [--threads N] [--repeat R] [--semantic OUT.pgm]
//
// MODEL: model.ts (TorchScript, torch::jit::load) or model.aoti.pt2 (AOTInductor package,
// torch::inductor::AOTIModelPackageLoader). Both hold extra/meta.json (task, spec, variant, OM hash,
// classes, the input contract and the order of the outputs), read here with the zip reader libtorch
// ships (caffe2::serialize::PyTorchStreamReader) and printed to stderr.
// Input: a binary PPM (P6, maxval 255), RGB. The program takes uint8 [N, 3, H, W] and does its own
// normalisation, padding and decoding; the image is checked against meta.json's pixel limit and size
// range first (an exported AOTInductor graph cannot raise a readable error of its own).
// Output, panoptic: OUT a binary PPM (P6) holding the panoptic id of each pixel in its colour,
// id = R + 256 * G + 65536 * B (the COCO panoptic PNG convention; void = ignore_label * label_divisor);
// --semantic writes the semantic map as an 8-bit PGM. Any other task (detection, pose): OUT a JSON object,
// one entry per output: {"shape": [...], "data": [flat values]}.
// Exit status: 0 ok, 1 error (one line on stderr), 2 usage.

#include <ATen/Parallel.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Image {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> rgb;  // H * W * 3, row-major, interleaved
};

// Next header token of a PNM file, skipping whitespace and # comments.
std::string pnm_token(std::istream& in) {
  std::string token;
  int c;
  while ((c = in.get()) != EOF) {
    if (c == '#') {
      while ((c = in.get()) != EOF && c != '\n') {
      }
      continue;
    }
    if (std::isspace(c)) {
      if (!token.empty()) break;
      continue;
    }
    token.push_back(static_cast<char>(c));
  }
  return token;
}

Image read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  if (pnm_token(in) != "P6") throw std::runtime_error(path + ": not a binary PPM (P6)");
  Image img;
  try {
    img.width = std::stoll(pnm_token(in));
    img.height = std::stoll(pnm_token(in));
    if (std::stoi(pnm_token(in)) != 255) throw std::runtime_error("maxval");
  } catch (const std::exception&) {
    throw std::runtime_error(path + ": bad PPM header (expected width, height, maxval 255)");
  }
  if (img.width <= 0 || img.height <= 0) throw std::runtime_error(path + ": empty image");
  img.rgb.resize(static_cast<size_t>(img.width * img.height * 3));
  in.read(reinterpret_cast<char*>(img.rgb.data()), static_cast<std::streamsize>(img.rgb.size()));
  if (in.gcount() != static_cast<std::streamsize>(img.rgb.size())) throw std::runtime_error(path + ": truncated PPM");
  return img;
}

// Panoptic ids [H, W] (int64) -> P6 with id = R + 256 G + 65536 B.
void write_id_ppm(const std::string& path, const torch::Tensor& ids) {
  auto map = ids.to(torch::kInt64).contiguous();
  const int64_t h = map.size(0), w = map.size(1);
  const int64_t* p = map.data_ptr<int64_t>();
  std::vector<uint8_t> out(static_cast<size_t>(h * w * 3));
  for (int64_t i = 0; i < h * w; ++i) {
    const int64_t id = p[i];
    if (id < 0 || id >= (int64_t{1} << 24)) throw std::runtime_error("panoptic id " + std::to_string(id) + " does not fit 24 bits");
    out[3 * i] = static_cast<uint8_t>(id & 0xff);
    out[3 * i + 1] = static_cast<uint8_t>((id >> 8) & 0xff);
    out[3 * i + 2] = static_cast<uint8_t>((id >> 16) & 0xff);
  }
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot write");
  f << "P6\n" << w << " " << h << "\n255\n";
  f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
  if (!f) throw std::runtime_error(path + ": write failed");
}

void write_pgm8(const std::string& path, const torch::Tensor& labels) {
  auto map = labels.clamp(0, 255).to(torch::kUInt8).contiguous();
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot write");
  f << "P5\n" << map.size(1) << " " << map.size(0) << "\n255\n";
  f.write(reinterpret_cast<const char*>(map.data_ptr<uint8_t>()), static_cast<std::streamsize>(map.numel()));
}

// The last line of a TorchScript error: "builtins.ValueError: <message>" for the program's own checks.
std::string last_line(const std::string& text) {
  std::string line, last;
  std::istringstream in(text);
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

int usage() {
  std::cerr << "usage: omgen_deploy MODEL.ts|MODEL.aoti.pt2 IMAGE.ppm OUT [--threads N] [--repeat R] "
               "[--semantic OUT.pgm]\n";
  return 2;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// extra/meta.json of either artifact kind (both are PyTorch zip archives).
std::string read_meta(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  if (!reader.hasRecord("extra/meta.json")) throw std::runtime_error(path + ": not an omgen deployment (no meta.json)");
  auto [data, size] = reader.getRecord("extra/meta.json");
  if (size > (1u << 20)) throw std::runtime_error(path + ": meta.json is over 1 MiB");
  return std::string(static_cast<const char*>(data.get()), size);
}

// The few values read from meta.json (a JSON object written by train/deploy.py: keys are unique and
// the ones read here are plain numbers and lists of strings or numbers).
size_t after_key(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) throw std::runtime_error("meta.json has no \"" + key + "\"");
  return at + key.size() + 3;
}

int64_t meta_int(const std::string& json, const std::string& key, size_t from = 0) {
  const size_t at = after_key(json.substr(from), key) + from;
  return std::stoll(json.substr(at));
}

std::vector<std::string> meta_strings(const std::string& json, const std::string& key) {
  const size_t open = json.find('[', after_key(json, key));
  const size_t close = json.find(']', open);
  std::vector<std::string> out;
  for (size_t i = json.find('"', open); i < close; i = json.find('"', i + 1)) {
    const size_t end = json.find('"', i + 1);
    out.push_back(json.substr(i + 1, end - i - 1));
    i = end;
  }
  return out;
}

// [lo, hi] of meta.input.dims.<name>, or {0, 0} when the program has no such range (TorchScript).
std::pair<int64_t, int64_t> meta_range(const std::string& json, const std::string& name) {
  const size_t dims = json.find("\"dims\":");
  if (dims == std::string::npos) return {0, 0};
  const size_t open = json.find('[', after_key(json.substr(dims), name) + dims);
  const int64_t lo = std::stoll(json.substr(open + 1));
  const int64_t hi = std::stoll(json.substr(json.find(',', open) + 1));
  return {lo, hi};
}

void check_image(const std::string& meta, int64_t height, int64_t width) {
  const int64_t max_pixels = meta_int(meta, "max_pixels");
  if (height * width > max_pixels)
    throw std::runtime_error("image: " + std::to_string(height * width) + " pixels (batch x height x width) in shape [1, 3, " +
                             std::to_string(height) + ", " + std::to_string(width) + "], over this program's limit of " +
                             std::to_string(max_pixels));
  for (const auto& [name, value] : {std::pair<std::string, int64_t>{"height", height}, {"width", width}}) {
    const auto [lo, hi] = meta_range(meta, name);
    if (hi > 0 && (value < lo || value > hi))
      throw std::runtime_error("image: " + name + " " + std::to_string(value) + " is outside this program's range " +
                               std::to_string(lo) + ".." + std::to_string(hi));
  }
}

// Every output as {"name": {"shape": [...], "data": [...]}}; floats with enough digits to round-trip.
void write_json(const std::string& path, const std::vector<std::string>& names, const std::vector<torch::Tensor>& values) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot write");
  f << std::setprecision(std::numeric_limits<float>::max_digits10) << "{";
  for (size_t k = 0; k < names.size(); ++k) {
    const torch::Tensor t = values[k].contiguous();
    f << (k ? ",\n " : "\n ") << "\"" << names[k] << "\": {\"shape\": [";
    for (int64_t d = 0; d < t.dim(); ++d) f << (d ? ", " : "") << t.size(d);
    f << "], \"data\": [";
    const torch::Tensor flat = t.is_floating_point() ? t.to(torch::kFloat64).flatten() : t.to(torch::kInt64).flatten();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      if (i) f << ", ";
      if (t.is_floating_point()) f << static_cast<float>(flat.data_ptr<double>()[i]);
      else f << flat.data_ptr<int64_t>()[i];
    }
    f << "]}";
  }
  f << "\n}\n";
  if (!f) throw std::runtime_error(path + ": write failed");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  const std::string model_path = argv[1], image_path = argv[2], out_path = argv[3];
  int threads = 0, repeat = 1;
  std::string semantic_path;
  for (int i = 4; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage();
    if (arg == "--threads") threads = std::atoi(argv[++i]);
    else if (arg == "--repeat") repeat = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--semantic") semantic_path = argv[++i];
    else return usage();
  }
  try {
    if (threads > 0) at::set_num_threads(threads);
    const std::string meta = read_meta(model_path);
    std::cerr << "metadata: " << meta << "\n";
    const std::vector<std::string> names = meta_strings(meta, "output_order");
    const bool aoti = ends_with(model_path, ".aoti.pt2");

    const Image img = read_ppm(image_path);
    check_image(meta, img.height, img.width);
    // [H, W, 3] interleaved -> [1, 3, H, W] uint8, the program's input
    torch::Tensor image = torch::from_blob(const_cast<uint8_t*>(img.rgb.data()), {1, img.height, img.width, 3}, torch::kUInt8)
                              .permute({0, 3, 1, 2})
                              .contiguous();

    torch::NoGradGuard no_grad;
    std::unique_ptr<torch::jit::Module> script;
    std::unique_ptr<torch::inductor::AOTIModelPackageLoader> package;
    if (aoti) {
      package = std::make_unique<torch::inductor::AOTIModelPackageLoader>(model_path, "model", /*run_single_threaded=*/false);
    } else {
      script = std::make_unique<torch::jit::Module>(torch::jit::load(model_path, torch::kCPU));
      script->eval();
    }
    std::vector<torch::Tensor> values;
    double best_ms = 1e30;
    for (int r = 0; r < repeat; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      if (aoti) {
        values = package->run({image});  // flattened in the order of meta.json's output_order
      } else {
        const auto result = script->forward({image}).toGenericDict();
        values.clear();
        for (const auto& name : names) values.push_back(result.at(name).toTensor());
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      best_ms = std::min(best_ms, ms);
    }
    if (values.size() != names.size())
      throw std::runtime_error(model_path + ": the program returned " + std::to_string(values.size()) +
                               " tensors, its metadata names " + std::to_string(names.size()));
    auto output = [&](const std::string& name) -> torch::Tensor {
      for (size_t k = 0; k < names.size(); ++k)
        if (names[k] == name) return values[k];
      throw std::runtime_error("the program has no output " + name);
    };
    std::cout << "image " << img.height << "x" << img.width << " (" << (aoti ? "AOTInductor" : "TorchScript") << "): ";
    if (std::find(names.begin(), names.end(), "panoptic") != names.end()) {
      const torch::Tensor panoptic = output("panoptic");  // [1, 1, H, W] int64
      write_id_ppm(out_path, panoptic[0][0]);
      if (!semantic_path.empty()) write_pgm8(semantic_path, output("semantic")[0][0]);
      const int64_t segments = std::get<0>(at::_unique(panoptic)).numel();
      std::cout << segments << " panoptic ids, " << output("center_valid").sum().item<int64_t>() << " centers, ";
    } else {
      write_json(out_path, names, values);
      std::cout << output("scores").size(1) << " detections, ";
    }
    std::cout << best_ms << " ms (best of " << repeat << "); wrote " << out_path << "\n";
  } catch (const c10::Error& e) {
    std::cerr << "error: " << last_line(e.what()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << last_line(e.what()) << "\n";
    return 1;
  }
  return 0;
}

// omgen deployment example: load the TorchScript program written by
// `python -m train.deploy export CKPT -o model.ts`, run one RGB image, write the panoptic map.
//
//   omgen_deploy MODEL.ts IMAGE.ppm OUT.ppm [--threads N] [--repeat R] [--semantic OUT.pgm]
//
// Input: a binary PPM (P6, maxval 255), RGB. The program takes uint8 [N, 3, H, W]
// and does its own normalisation, padding and decoding.
// Output: OUT.ppm, a binary PPM (P6) holding the panoptic id of each pixel in its
// colour, id = R + 256 * G + 65536 * B (the COCO panoptic PNG convention), so ids up
// to 2^24 - 1 survive (class * label_divisor + instance; void = ignore_label *
// label_divisor = 255000 by default). --semantic writes the semantic map as an 8-bit PGM.
// The file's metadata (extra file meta.json: spec, variant, OM hash, class names,
// thing ids, label divisor) is printed to stderr.
// Exit status: 0 ok, 1 error (one line on stderr), 2 usage.

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <fstream>
#include <iostream>
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
  std::cerr << "usage: omgen_deploy MODEL.ts IMAGE.ppm OUT.ppm [--threads N] [--repeat R] [--semantic OUT.pgm]\n";
  return 2;
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
    torch::jit::ExtraFilesMap extra{{"meta.json", ""}};
    torch::jit::Module module = torch::jit::load(model_path, torch::kCPU, extra);
    module.eval();
    std::cerr << "metadata: " << extra["meta.json"] << "\n";

    const Image img = read_ppm(image_path);
    // [H, W, 3] interleaved -> [1, 3, H, W] uint8, the program's input
    torch::Tensor image = torch::from_blob(const_cast<uint8_t*>(img.rgb.data()), {1, img.height, img.width, 3}, torch::kUInt8)
                              .permute({0, 3, 1, 2})
                              .contiguous();

    torch::NoGradGuard no_grad;
    c10::IValue output;
    double best_ms = 1e30;
    for (int r = 0; r < repeat; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      output = module.forward({image});
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      best_ms = std::min(best_ms, ms);
    }
    const auto result = output.toGenericDict();
    const torch::Tensor panoptic = result.at("panoptic").toTensor();   // [1, 1, H, W] int64
    const torch::Tensor semantic = result.at("semantic").toTensor();   // [1, 1, H, W] int64
    const torch::Tensor valid = result.at("center_valid").toTensor();  // [1, k] bool
    write_id_ppm(out_path, panoptic[0][0]);
    if (!semantic_path.empty()) write_pgm8(semantic_path, semantic[0][0]);
    const int64_t segments = std::get<0>(at::_unique(panoptic)).numel();
    std::cout << "image " << img.height << "x" << img.width << ": " << segments << " panoptic ids, "
              << valid.sum().item<int64_t>() << " centers, " << best_ms << " ms (best of " << repeat << "); wrote "
              << out_path << "\n";
  } catch (const c10::Error& e) {
    std::cerr << "error: " << last_line(e.what()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << last_line(e.what()) << "\n";
    return 1;
  }
  return 0;
}

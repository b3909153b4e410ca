// Multi-scale deformable attention on the CPU: forward and backward.
//
// Same semantics as mmcv's CUDA kernel and its pure-PyTorch reference
// (`multi_scale_deformable_attn_pytorch`, i.e. `grid_sample` with bilinear
// interpolation, align_corners=False and zero padding):
//
//   out[b, q, h, :] = sum_{l, p} a[b, q, h, l, p] * bilinear(value_l[b, :, h, :],
//                                                            loc[b, q, h, l, p])
//
// with the sample at pixel (x * W_l - 0.5, y * H_l - 0.5) of level l and every
// corner outside the level contributing zero. Gradients follow grid_sample's
// (they differ from the CUDA kernel's only for a sample exactly at pixel -1,
// whose inside neighbour gets a location gradient here and none there).
//
// Shapes (all row-major, made contiguous here):
//   value               (bs, num_value, num_heads, dims)
//   spatial_shapes      (num_levels, 2) int64, (h, w) of each level
//   level_start_index   (num_levels,) int64, first row of each level in `value`
//   sampling_locations  (bs, num_query, num_heads, num_levels, num_points, 2), (x, y)
//   attention_weights   (bs, num_query, num_heads, num_levels, num_points)
//   output              (bs, num_query, num_heads * dims)
//
// Parallelism uses at::parallel_for (torch's thread pool and thread count).
// The forward is split over (batch, head, block of queries) items, each owning
// its output rows; the queries of one (batch, head) pair read one head's slice
// of `value`, which stays in cache. The backward is split over (batch, head)
// pairs: a pair owns the slice grad_value[b, :, h, :] and the location and
// weight gradients of its samples, so there are no write races and the result
// does not depend on the thread count. The inner loops run over `dims`
// contiguous elements and vectorise; `dims == 32` (256 channels in 8 heads)
// gets a fixed-size instance.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/utils/pybind.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

// The hot loops are compiled for AVX2 + FMA and for baseline x86-64; the loader
// picks the one the CPU runs (GCC/Clang function multi-versioning), so the
// build stays portable without -march=native. AVX2 is about 1.4x faster than
// baseline here; an AVX-512 clone measured no faster than AVX2.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MSDA_TARGET_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MSDA_TARGET_CLONES
#endif
#if defined(__GNUC__) || defined(__clang__)
#define MSDA_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define MSDA_ALWAYS_INLINE inline
#endif

namespace {

// The four bilinear corners of one sample: row offsets within the level,
// interpolation weights (zero for corners outside the level) and the
// fractional parts needed by the location gradient.
template <typename scalar_t>
struct Corners {
  int64_t row[4];  // (y0, x0), (y0, x1), (y1, x0), (y1, x1)
  scalar_t w[4];
  bool valid[4];
  scalar_t lx, ly, hx, hy;
};

// Fills `c` for the normalised location (x, y) on an h x w level; returns
// false when no corner lies inside the level (also for NaN locations).
template <typename scalar_t>
MSDA_ALWAYS_INLINE bool corners(scalar_t x, scalar_t y, int64_t h, int64_t w,
                                Corners<scalar_t>& c) {
  // (x * w - 0.5), rounded as grid_sample rounds it after mmcv maps x to
  // 2x - 1: then both take the same corners even for samples within a rounding
  // error of a pixel centre, where the location gradient jumps.
  const scalar_t px = (x * 2 - 1 + 1) * (static_cast<scalar_t>(w) / 2) - scalar_t(0.5);
  const scalar_t py = (y * 2 - 1 + 1) * (static_cast<scalar_t>(h) / 2) - scalar_t(0.5);
  // px == -1 still has its x1 = 0 corner inside (zero weight in the forward,
  // a non-zero location gradient), as in grid_sample.
  if (!(px >= scalar_t(-1) && py >= scalar_t(-1) && px < static_cast<scalar_t>(w) &&
        py < static_cast<scalar_t>(h))) {
    return false;
  }
  const scalar_t fx = std::floor(px), fy = std::floor(py);
  const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
  c.lx = px - fx;
  c.ly = py - fy;
  c.hx = scalar_t(1) - c.lx;
  c.hy = scalar_t(1) - c.ly;
  const bool x0_in = x0 >= 0, x1_in = x0 + 1 < w, y0_in = y0 >= 0, y1_in = y0 + 1 < h;
  c.valid[0] = y0_in && x0_in;
  c.valid[1] = y0_in && x1_in;
  c.valid[2] = y1_in && x0_in;
  c.valid[3] = y1_in && x1_in;
  c.row[0] = y0 * w + x0;
  c.row[1] = c.row[0] + 1;
  c.row[2] = c.row[0] + w;
  c.row[3] = c.row[2] + 1;
  c.w[0] = c.valid[0] ? c.hy * c.hx : scalar_t(0);
  c.w[1] = c.valid[1] ? c.hy * c.lx : scalar_t(0);
  c.w[2] = c.valid[2] ? c.ly * c.hx : scalar_t(0);
  c.w[3] = c.valid[3] ? c.ly * c.lx : scalar_t(0);
  return true;
}

struct Sizes {
  int64_t bs, num_value, num_heads, dims, num_query, num_levels, num_points;
};

// Queries are processed in blocks of this many per (batch, head) pair.
constexpr int64_t kQueryBlock = 256;

// Fewest samples worth a thread: smaller problems run on the calling thread,
// without the cost of waking the pool (milliseconds on a busy machine).
constexpr int64_t kMinSamplesPerThread = 16384;

// Grain size for at::parallel_for over items of `samples_per_item` samples each.
int64_t grain_size(int64_t samples_per_item) {
  return std::max<int64_t>(1, kMinSamplesPerThread / std::max<int64_t>(1, samples_per_item));
}

// Forward of the work items [begin, end) of the flattened
// (batch, head, query block) range; each item owns its output rows.
template <typename scalar_t, int kDims>
MSDA_TARGET_CLONES void forward_items(const Sizes& s, const int64_t* shapes,
                                      const int64_t* starts, const scalar_t* __restrict__ value,
                                      const scalar_t* __restrict__ loc,
                                      const scalar_t* __restrict__ attn,
                                      scalar_t* __restrict__ out, int64_t begin, int64_t end) {
  const int64_t dims = kDims > 0 ? kDims : s.dims;
  const int64_t row_stride = s.num_heads * dims;  // between value rows of one head
  const int64_t lp = s.num_levels * s.num_points;
  const int64_t blocks = (s.num_query + kQueryBlock - 1) / kQueryBlock;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t bh = item / blocks, b = bh / s.num_heads, h = bh % s.num_heads;
    const int64_t q_begin = (item % blocks) * kQueryBlock;
    const int64_t q_end = std::min(q_begin + kQueryBlock, s.num_query);
    for (int64_t q = q_begin; q < q_end; ++q) {
      const int64_t bqh = (b * s.num_query + q) * s.num_heads + h;
      scalar_t* __restrict__ o = out + bqh * dims;
      for (int64_t d = 0; d < dims; ++d) o[d] = scalar_t(0);
      const scalar_t* a = attn + bqh * lp;
      const scalar_t* xy = loc + bqh * lp * 2;
      for (int64_t l = 0; l < s.num_levels; ++l) {
        const int64_t lh = shapes[2 * l], lw = shapes[2 * l + 1];
        const scalar_t* v_level = value + ((b * s.num_value + starts[l]) * s.num_heads + h) * dims;
        for (int64_t p = 0; p < s.num_points; ++p, ++a, xy += 2) {
          Corners<scalar_t> c;
          if (!corners(xy[0], xy[1], lh, lw, c)) continue;
          for (int k = 0; k < 4; ++k) {
            if (!c.valid[k]) continue;
            const scalar_t wk = *a * c.w[k];
            const scalar_t* __restrict__ v = v_level + c.row[k] * row_stride;
#pragma omp simd
            for (int64_t d = 0; d < dims; ++d) o[d] += wk * v[d];
          }
        }
      }
    }
  }
}

// Gradients of the (batch, head) pairs [begin, end) of the flattened range.
template <typename scalar_t, int kDims>
MSDA_TARGET_CLONES void backward_pairs(const Sizes& s, const int64_t* shapes,
                                       const int64_t* starts, const scalar_t* __restrict__ value,
                                       const scalar_t* __restrict__ loc,
                                       const scalar_t* __restrict__ attn,
                                       const scalar_t* __restrict__ grad_out,
                                       scalar_t* __restrict__ grad_value,
                                       scalar_t* __restrict__ grad_loc,
                                       scalar_t* __restrict__ grad_attn, int64_t begin,
                                       int64_t end) {
  const int64_t dims = kDims > 0 ? kDims : s.dims;
  const int64_t row_stride = s.num_heads * dims;
  const int64_t lp = s.num_levels * s.num_points;
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t b = bh / s.num_heads, h = bh % s.num_heads;
    for (int64_t q = 0; q < s.num_query; ++q) {
      const int64_t bqh = (b * s.num_query + q) * s.num_heads + h;
      const scalar_t* __restrict__ g = grad_out + bqh * dims;
      const scalar_t* a = attn + bqh * lp;
      const scalar_t* xy = loc + bqh * lp * 2;
      scalar_t* ga = grad_attn + bqh * lp;
      scalar_t* gxy = grad_loc + bqh * lp * 2;
      for (int64_t l = 0; l < s.num_levels; ++l) {
        const int64_t lh = shapes[2 * l], lw = shapes[2 * l + 1];
        const int64_t level_offset = ((b * s.num_value + starts[l]) * s.num_heads + h) * dims;
        const scalar_t* v_level = value + level_offset;
        scalar_t* gv_level = grad_value + level_offset;
        for (int64_t p = 0; p < s.num_points; ++p, ++a, ++ga, xy += 2, gxy += 2) {
          Corners<scalar_t> c;
          if (!corners(xy[0], xy[1], lh, lw, c)) continue;  // gradients stay zero
          scalar_t dot[4] = {0, 0, 0, 0};  // grad_out . value at each corner
          for (int k = 0; k < 4; ++k) {
            if (!c.valid[k]) continue;
            const scalar_t wk = *a * c.w[k];
            const scalar_t* __restrict__ v = v_level + c.row[k] * row_stride;
            scalar_t* __restrict__ gv = gv_level + c.row[k] * row_stride;
            scalar_t acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t d = 0; d < dims; ++d) {
              acc += g[d] * v[d];
              gv[d] += wk * g[d];
            }
            dot[k] = acc;
          }
          *ga = c.w[0] * dot[0] + c.w[1] * dot[1] + c.w[2] * dot[2] + c.w[3] * dot[3];
          // d(pixel)/d(location) is the level size.
          gxy[0] = *a * static_cast<scalar_t>(lw) *
                   (c.hy * (dot[1] - dot[0]) + c.ly * (dot[3] - dot[2]));
          gxy[1] = *a * static_cast<scalar_t>(lh) *
                   (c.hx * (dot[2] - dot[0]) + c.lx * (dot[3] - dot[1]));
        }
      }
    }
  }
}

void check_inputs(const at::Tensor& value, const at::Tensor& spatial_shapes,
                  const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                  const at::Tensor& attention_weights) {
  for (const at::Tensor* t :
       {&value, &spatial_shapes, &level_start_index, &sampling_locations, &attention_weights}) {
    TORCH_CHECK(t->device().is_cpu(), "ms_deform_attn_cpu: all inputs must be CPU tensors");
  }
  TORCH_CHECK(value.dim() == 4, "value must be (bs, num_value, num_heads, dims), got ",
              value.sizes());
  TORCH_CHECK(sampling_locations.dim() == 6 && sampling_locations.size(5) == 2,
              "sampling_locations must be (bs, num_query, num_heads, num_levels, num_points, 2), "
              "got ", sampling_locations.sizes());
  const int64_t bs = value.size(0), heads = value.size(2);
  const int64_t levels = sampling_locations.size(3);
  TORCH_CHECK(sampling_locations.size(0) == bs && sampling_locations.size(2) == heads,
              "sampling_locations ", sampling_locations.sizes(), " do not match value ",
              value.sizes());
  TORCH_CHECK(attention_weights.sizes() == sampling_locations.sizes().slice(0, 5),
              "attention_weights must be ", sampling_locations.sizes().slice(0, 5), ", got ",
              attention_weights.sizes());
  TORCH_CHECK(spatial_shapes.dim() == 2 && spatial_shapes.size(0) == levels &&
                  spatial_shapes.size(1) == 2,
              "spatial_shapes must be (num_levels, 2), got ", spatial_shapes.sizes());
  TORCH_CHECK(level_start_index.dim() == 1 && level_start_index.size(0) == levels,
              "level_start_index must be (num_levels,), got ", level_start_index.sizes());
  TORCH_CHECK(value.scalar_type() == sampling_locations.scalar_type() &&
                  value.scalar_type() == attention_weights.scalar_type(),
              "value, sampling_locations and attention_weights must share one dtype");
  TORCH_CHECK(!spatial_shapes.is_floating_point() && !level_start_index.is_floating_point(),
              "spatial_shapes and level_start_index must be integer tensors");
}

Sizes sizes_of(const at::Tensor& value, const at::Tensor& sampling_locations) {
  return {value.size(0),
          value.size(1),
          value.size(2),
          value.size(3),
          sampling_locations.size(1),
          sampling_locations.size(3),
          sampling_locations.size(4)};
}

// Checks that every level lies inside `value` so no sample can read past it.
void check_levels(const at::Tensor& shapes, const at::Tensor& starts, int64_t num_value) {
  const int64_t* sh = shapes.data_ptr<int64_t>();
  const int64_t* st = starts.data_ptr<int64_t>();
  for (int64_t l = 0; l < shapes.size(0); ++l) {
    TORCH_CHECK(sh[2 * l] >= 0 && sh[2 * l + 1] >= 0 && st[l] >= 0 &&
                    st[l] + sh[2 * l] * sh[2 * l + 1] <= num_value,
                "level ", l, " (start ", st[l], ", shape ", sh[2 * l], "x", sh[2 * l + 1],
                ") does not fit in num_value = ", num_value);
  }
}

at::Tensor ms_deform_attn_forward(const at::Tensor& value_in, const at::Tensor& spatial_shapes_in,
                                  const at::Tensor& level_start_index_in,
                                  const at::Tensor& sampling_locations_in,
                                  const at::Tensor& attention_weights_in) {
  check_inputs(value_in, spatial_shapes_in, level_start_index_in, sampling_locations_in,
               attention_weights_in);
  const at::Tensor value = value_in.contiguous();
  const at::Tensor shapes = spatial_shapes_in.to(at::kLong).contiguous();
  const at::Tensor starts = level_start_index_in.to(at::kLong).contiguous();
  const at::Tensor loc = sampling_locations_in.contiguous();
  const at::Tensor attn = attention_weights_in.contiguous();
  const Sizes s = sizes_of(value, loc);
  check_levels(shapes, starts, s.num_value);
  at::Tensor out = at::empty({s.bs, s.num_query, s.num_heads * s.dims}, value.options());
  const int64_t* sh = shapes.data_ptr<int64_t>();
  const int64_t* st = starts.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_cpu_forward", [&] {
    const scalar_t* v = value.data_ptr<scalar_t>();
    const scalar_t* xy = loc.data_ptr<scalar_t>();
    const scalar_t* a = attn.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const int64_t blocks = (s.num_query + kQueryBlock - 1) / kQueryBlock;
    const int64_t grain =
        grain_size(std::min(kQueryBlock, s.num_query) * s.num_levels * s.num_points);
    at::parallel_for(0, s.bs * s.num_heads * blocks, grain, [&](int64_t begin, int64_t end) {
      if (s.dims == 32) {
        forward_items<scalar_t, 32>(s, sh, st, v, xy, a, o, begin, end);
      } else {
        forward_items<scalar_t, 0>(s, sh, st, v, xy, a, o, begin, end);
      }
    });
  });
  return out;
}

std::vector<at::Tensor> ms_deform_attn_backward(const at::Tensor& value_in,
                                                const at::Tensor& spatial_shapes_in,
                                                const at::Tensor& level_start_index_in,
                                                const at::Tensor& sampling_locations_in,
                                                const at::Tensor& attention_weights_in,
                                                const at::Tensor& grad_output_in) {
  check_inputs(value_in, spatial_shapes_in, level_start_index_in, sampling_locations_in,
               attention_weights_in);
  const at::Tensor value = value_in.contiguous();
  const at::Tensor shapes = spatial_shapes_in.to(at::kLong).contiguous();
  const at::Tensor starts = level_start_index_in.to(at::kLong).contiguous();
  const at::Tensor loc = sampling_locations_in.contiguous();
  const at::Tensor attn = attention_weights_in.contiguous();
  const Sizes s = sizes_of(value, loc);
  check_levels(shapes, starts, s.num_value);
  TORCH_CHECK(grad_output_in.device().is_cpu() &&
                  grad_output_in.scalar_type() == value.scalar_type() &&
                  grad_output_in.numel() == s.bs * s.num_query * s.num_heads * s.dims,
              "grad_output must be a CPU tensor of value's dtype with shape (bs, num_query, "
              "num_heads * dims), got ", grad_output_in.sizes());
  const at::Tensor grad_out = grad_output_in.contiguous();
  at::Tensor grad_value = at::zeros_like(value);
  at::Tensor grad_loc = at::zeros_like(loc);
  at::Tensor grad_attn = at::zeros_like(attn);
  const int64_t* sh = shapes.data_ptr<int64_t>();
  const int64_t* st = starts.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_cpu_backward", [&] {
    const scalar_t* v = value.data_ptr<scalar_t>();
    const scalar_t* xy = loc.data_ptr<scalar_t>();
    const scalar_t* a = attn.data_ptr<scalar_t>();
    const scalar_t* g = grad_out.data_ptr<scalar_t>();
    scalar_t* gv = grad_value.data_ptr<scalar_t>();
    scalar_t* gxy = grad_loc.data_ptr<scalar_t>();
    scalar_t* ga = grad_attn.data_ptr<scalar_t>();
    const int64_t grain = grain_size(s.num_query * s.num_levels * s.num_points);
    at::parallel_for(0, s.bs * s.num_heads, grain, [&](int64_t begin, int64_t end) {
      if (s.dims == 32) {
        backward_pairs<scalar_t, 32>(s, sh, st, v, xy, a, g, gv, gxy, ga, begin, end);
      } else {
        backward_pairs<scalar_t, 0>(s, sh, st, v, xy, a, g, gv, gxy, ga, begin, end);
      }
    });
  });
  return {grad_value, grad_loc, grad_attn};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Multi-scale deformable attention, CPU kernels (forward and backward).";
  m.def("forward", &ms_deform_attn_forward,
        "Forward: (value, spatial_shapes, level_start_index, sampling_locations, "
        "attention_weights) -> output (bs, num_query, num_heads * dims)");
  m.def("backward", &ms_deform_attn_backward,
        "Backward: (..., grad_output) -> [grad_value, grad_sampling_locations, "
        "grad_attention_weights]");
}

// tools/cli/cmd_demo.cpp — `simdattn demo`: chapter 3 of the book, section by section, on its
// six-token example "Your journey starts with one step", printing the intermediate results the
// chapter prints on the reference backend; then the fast path against the reference on a
// GPT-2-small layer.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "common/dropout.hpp"  // the library's own mask, so §3.5.2 shows what forward() drops
#include "simdattn/attention.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/runtime.hpp"
#include "simdattn/safetensors.hpp"

namespace simdattn::cli {
namespace {

const std::vector<std::string> kWords = {"Your", "journey", "starts", "with", "one", "step"};
const std::vector<float> kInputs = {0.43f, 0.15f, 0.89f,   // Your     (x^1)
                                    0.55f, 0.87f, 0.66f,   // journey  (x^2)
                                    0.57f, 0.85f, 0.64f,   // starts   (x^3)
                                    0.22f, 0.58f, 0.33f,   // with     (x^4)
                                    0.77f, 0.25f, 0.10f,   // one      (x^5)
                                    0.05f, 0.80f, 0.55f};  // step     (x^6)
constexpr std::int64_t kT = 6, kD = 3;

// Seeds of the trainable weights. The book uses torch.manual_seed(123) / (789); simdattn has
// its own generators, so the values (and everything computed from them) differ from the book's.
constexpr std::uint64_t kSeedV1 = 123, kSeedV2 = 789, kSeedCausal = 123, kSeedDropout = 123;

void heading(const char* text) { std::printf("\n== %s ==\n", text); }
void note(const char* text) { std::printf("   %s\n", text); }

void print_row(const float* row, std::int64_t cols) {
  std::printf("[");
  for (std::int64_t j = 0; j < cols; ++j) {
    if (std::isinf(row[j]))
      std::printf(" %8s", row[j] < 0 ? "-inf" : "inf");
    else
      std::printf(" %8.4f", static_cast<double>(row[j]));
  }
  std::printf(" ]\n");
}

/// A labelled matrix; rows are named after the tokens when there are six of them.
void print_matrix(const std::string& label, const float* m, std::int64_t rows,
                  std::int64_t cols) {
  std::printf("   %s [%lld x %lld]:\n", label.c_str(), static_cast<long long>(rows),
              static_cast<long long>(cols));
  for (std::int64_t i = 0; i < rows; ++i) {
    std::printf("     %-8s", rows == kT ? kWords[static_cast<std::size_t>(i)].c_str() : "");
    print_row(m + i * cols, cols);
  }
}

void print_vector(const std::string& label, const float* v, std::int64_t n) {
  std::printf("   %-44s", (label + ":").c_str());
  print_row(v, n);
}

void print_tensor(const std::string& label, const Tensor& t) {
  std::printf("   %s, shape %s\n", label.c_str(), shape_to_string(t.shape()).c_str());
  const std::int64_t rows = t.dim(t.rank() - 2), cols = t.dim(t.rank() - 1);
  const std::int64_t batches = t.rank() == 3 ? t.dim(0) : 1;
  for (std::int64_t b = 0; b < batches; ++b)
    print_matrix("batch " + std::to_string(b), t.data() + b * rows * cols, rows, cols);
}

/// C[m,n] = A[m,k]·op(B) on the reference GEMM.
std::vector<float> matmul(const float* a, std::int64_t m, std::int64_t k, const float* b,
                          std::int64_t n, Transpose trans_b) {
  std::vector<float> c(static_cast<std::size_t>(m * n));
  reference::sgemm(trans_b, m, n, k, 1.0f, a, k, b, trans_b == Transpose::yes ? k : n, 0.0f,
                   c.data(), n);
  return c;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
  return d;
}

/// U[0, 1) like torch.rand, from splitmix64 (a generator of our own, not torch's).
std::vector<float> uniform01(std::size_t n, std::uint64_t seed) {
  std::vector<float> v(n);
  std::uint64_t s = seed;
  for (auto& x : v) {
    s += 0x9e3779b97f4a7c15ULL;
    x = static_cast<float>(detail::mix64(s) >> 40) * (1.0f / 16777216.0f);
  }
  return v;
}

const Tensor& param(const TensorMap& state, const std::string& name) { return state.at(name); }

ForwardOptions reference_options() {
  ForwardOptions o;
  o.backend = Backend::reference;
  return o;
}

Tensor two_copies_of_inputs() {
  std::vector<float> v(kInputs);
  v.insert(v.end(), kInputs.begin(), kInputs.end());
  return Tensor({2, kT, kD}, v);
}

void section_simple_attention() {
  const float* x = kInputs.data();
  heading("Inputs: \"Your journey starts with one step\" (6 tokens, 3-d embeddings)");
  print_matrix("inputs", x, kT, kD);

  heading("3.3.1 Attention without trainable weights, for query x(2) \"journey\"");
  const float* query = x + kD;
  std::vector<float> scores = matmul(query, 1, kD, x, kT, Transpose::yes);
  print_vector("attention scores w(2) = x(2) . x(j)", scores.data(), kT);
  std::vector<float> by_sum(scores);
  float sum = 0;
  for (float s : scores) sum += s;
  for (auto& s : by_sum) s /= sum;
  print_vector("weights, scores / sum", by_sum.data(), kT);
  std::vector<float> naive(scores), stable(scores);
  reference::softmax_naive_rows(naive.data(), 1, kT, kT);
  reference::softmax_stable_rows(stable.data(), 1, kT, kT);
  print_vector("weights, naive softmax exp(w)/sum exp", naive.data(), kT);
  print_vector("weights, stable softmax exp(w-max)/sum", stable.data(), kT);
  float total = 0;
  for (float w : stable) total += w;
  std::printf("   %-44s %8.4f\n", "sum of the weights:", static_cast<double>(total));
  std::vector<float> z2 = matmul(stable.data(), 1, kT, x, kD, Transpose::no);
  print_vector("context vector z(2) = sum_j a(2,j) x(j)", z2.data(), kD);

  heading("3.3.2 Attention weights and context vectors for all inputs");
  std::vector<float> all_scores = matmul(x, kT, kD, x, kT, Transpose::yes);
  print_matrix("attention scores X . X^T", all_scores.data(), kT, kT);
  std::vector<float> weights(all_scores);
  reference::softmax_stable_rows(weights.data(), kT, kT, kT);
  print_matrix("attention weights softmax(scores, dim=-1)", weights.data(), kT, kT);
  std::vector<float> row_sums(kT, 0.0f);
  for (std::int64_t i = 0; i < kT; ++i)
    for (std::int64_t j = 0; j < kT; ++j) row_sums[i] += weights[i * kT + j];
  print_vector("row sums", row_sums.data(), kT);
  const Tensor context = simple_attention(Tensor({kT, kD}, kInputs), reference_options());
  print_matrix("context vectors weights . X (simple_attention)", context.data(), kT, kD);
  std::printf("   row 2 equals z(2) above: max |diff| = %.2e\n",
              max_abs_diff(std::vector<float>(context.data() + kD, context.data() + 2 * kD), z2));
}

/// §3.4: returns the SelfAttentionV2 state dict for §3.5.
TensorMap section_trainable_weights() {
  const float* x = kInputs.data();
  const std::int64_t d_in = 3, d_out = 2;
  heading("3.4.1 Self-attention with trainable weights, step by step (d_in=3, d_out=2)");
  note("W_query, W_key, W_value are drawn from U[0,1) like the book's torch.rand, but by");
  note("simdattn's own seeded generator: they are NOT torch.manual_seed(123)'s values, so from");
  note("here on the numbers differ from the book's.");
  TensorMap v1_state;
  const char* names[] = {"W_query", "W_key", "W_value"};
  for (int i = 0; i < 3; ++i)
    v1_state[names[i]] = Tensor({d_in, d_out}, uniform01(d_in * d_out, kSeedV1 * 3 + i));
  for (const char* n : names) print_matrix(n, param(v1_state, n).data(), d_in, d_out);

  const float* wq = param(v1_state, "W_query").data();
  const float* wk = param(v1_state, "W_key").data();
  const float* wv = param(v1_state, "W_value").data();
  std::vector<float> query_2 = matmul(x + kD, 1, d_in, wq, d_out, Transpose::no);
  std::vector<float> keys = matmul(x, kT, d_in, wk, d_out, Transpose::no);
  std::vector<float> values = matmul(x, kT, d_in, wv, d_out, Transpose::no);
  print_vector("query_2 = x(2) . W_query", query_2.data(), d_out);
  print_matrix("keys = X . W_key", keys.data(), kT, d_out);
  print_matrix("values = X . W_value", values.data(), kT, d_out);
  std::vector<float> scores_2 = matmul(query_2.data(), 1, d_out, keys.data(), kT, Transpose::yes);
  std::printf("   %-44s %8.4f\n", "attention score w22 = query_2 . key_2:",
              static_cast<double>(scores_2[1]));
  print_vector("attention scores w2 = query_2 . keys^T", scores_2.data(), kT);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d_out));
  std::vector<float> weights_2(scores_2);
  reference::causal_softmax(weights_2.data(), 1, kT, kT, scale, 0, /*causal=*/false);
  print_vector("weights softmax(w2 / sqrt(d_k)), d_k=2", weights_2.data(), kT);
  std::vector<float> context_2 = matmul(weights_2.data(), 1, kT, values.data(), d_out,
                                        Transpose::no);
  print_vector("context vector z(2) = weights . values", context_2.data(), d_out);

  heading("3.4.2 SelfAttention_v1 and SelfAttention_v2");
  SelfAttentionV1 v1(d_in, d_out);
  v1.load_state_dict(v1_state);
  const Tensor inputs({kT, kD}, kInputs);
  const Tensor y_v1 = v1.forward(inputs, reference_options());
  print_matrix("SelfAttention_v1 context vectors", y_v1.data(), kT, d_out);
  std::printf("   row 2 equals z(2) above: max |diff| = %.2e\n",
              max_abs_diff(std::vector<float>(y_v1.data() + d_out, y_v1.data() + 2 * d_out),
                           context_2));

  SelfAttentionV2 v2(d_in, d_out, /*qkv_bias=*/false);
  v2.init_random(kSeedV2);
  std::printf("   SelfAttention_v2: nn.Linear layout [d_out, d_in], nn.Linear's initialisation "
              "(seed %llu)\n", static_cast<unsigned long long>(kSeedV2));
  const TensorMap v2_state = v2.state_dict();
  const Tensor y_v2 = v2.forward(inputs, reference_options());
  print_matrix("SelfAttention_v2 context vectors", y_v2.data(), kT, d_out);

  // Exercise 3.1: v1 with v2's weights transposed computes the same thing.
  TensorMap transferred;
  for (const char* n : names) {
    const Tensor& w = param(v2_state, std::string(n) + ".weight");  // [d_out, d_in]
    Tensor t({d_in, d_out});
    for (std::int64_t i = 0; i < d_in; ++i)
      for (std::int64_t j = 0; j < d_out; ++j) t[i * d_out + j] = w[j * d_in + i];
    transferred[n] = std::move(t);
  }
  SelfAttentionV1 v1_from_v2(d_in, d_out);
  v1_from_v2.load_state_dict(transferred);
  const Tensor y_transfer = v1_from_v2.forward(inputs, reference_options());
  std::printf("   exercise 3.1, v1 loaded with v2's weights transposed: max |diff| to v2 = %.2e\n",
              max_abs_diff(y_transfer.values(), y_v2.values()));
  return v2_state;
}

void section_causal(const TensorMap& v2_state) {
  const float* x = kInputs.data();
  const std::int64_t d_in = 3, d_out = 2;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d_out));
  heading("3.5.1 Causal attention mask (queries and keys of SelfAttention_v2)");
  std::vector<float> queries =
      matmul(x, kT, d_in, param(v2_state, "W_query.weight").data(), d_out, Transpose::yes);
  std::vector<float> keys =
      matmul(x, kT, d_in, param(v2_state, "W_key.weight").data(), d_out, Transpose::yes);
  const std::vector<float> scores = matmul(queries.data(), kT, d_out, keys.data(), kT,
                                           Transpose::yes);
  std::vector<float> weights(scores);
  reference::causal_softmax(weights.data(), kT, kT, kT, scale, 0, /*causal=*/false);
  print_matrix("attention weights softmax(scores / sqrt(d_k)), unmasked", weights.data(), kT, kT);
  std::vector<float> mask_simple(kT * kT);
  for (std::int64_t i = 0; i < kT; ++i)
    for (std::int64_t j = 0; j < kT; ++j) mask_simple[i * kT + j] = j <= i ? 1.0f : 0.0f;
  print_matrix("mask_simple = tril(ones)", mask_simple.data(), kT, kT);
  std::vector<float> masked_simple(kT * kT);
  for (std::size_t i = 0; i < masked_simple.size(); ++i)
    masked_simple[i] = weights[i] * mask_simple[i];
  print_matrix("masked_simple = weights * mask_simple", masked_simple.data(), kT, kT);
  std::vector<float> renormalised(scores);
  reference::causal_softmax_renormalized(renormalised.data(), kT, kT, kT, scale, 0);
  print_matrix("renormalised: masked_simple / row sums", renormalised.data(), kT, kT);

  std::vector<float> masked(scores);
  for (std::int64_t i = 0; i < kT; ++i)
    for (std::int64_t j = i + 1; j < kT; ++j) masked[i * kT + j] = -INFINITY;
  print_matrix("scores with -inf above the diagonal", masked.data(), kT, kT);
  std::vector<float> causal(scores);
  reference::causal_softmax(causal.data(), kT, kT, kT, scale, 0, /*causal=*/true);
  print_matrix("softmax(masked / sqrt(d_k))", causal.data(), kT, kT);
  std::printf("   -inf form vs renormalised form: max |diff| = %.2e\n",
              max_abs_diff(causal, renormalised));

  heading("3.5.2 Dropout, p = 0.5");
  note("simdattn's dropout mask is a pure function of (seed, batch, head, query, key), so");
  note("both backends and every thread count drop the same weights; the mask differs from");
  note("torch.manual_seed(123)'s. Kept entries are scaled by 1/(1-p) = 2.");
  const detail::DropoutParams dropout{0.5, kSeedDropout};
  std::vector<float> ones_dropped(kT * kT);
  for (std::int64_t i = 0; i < kT; ++i)
    for (std::int64_t j = 0; j < kT; ++j)
      ones_dropped[i * kT + j] =
          detail::dropout_keep(dropout, 0, 0, static_cast<std::uint64_t>(i),
                               static_cast<std::uint64_t>(j))
              ? static_cast<float>(dropout.keep_scale())
              : 0.0f;
  print_matrix("dropout(ones(6, 6)), seed 123", ones_dropped.data(), kT, kT);

  CausalAttention with_dropout(d_in, d_out, kT, 0.5);
  with_dropout.load_state_dict(v2_state);  // same parameter names as SelfAttention_v2
  Tensor dropped_weights;
  ForwardOptions train = reference_options();
  train.train = true;
  train.seed = kSeedDropout;
  train.attn_weights = &dropped_weights;
  (void)with_dropout.forward(Tensor({kT, kD}, kInputs), train);
  print_matrix("dropout(causal attention weights), seed 123", dropped_weights.data(), kT, kT);

  heading("3.5.3 CausalAttention on a batch of two copies of the inputs (dropout 0.0)");
  const Tensor batch = two_copies_of_inputs();
  std::printf("   batch shape %s\n", shape_to_string(batch.shape()).c_str());
  CausalAttention ca(d_in, d_out, /*context_length=*/kT, /*dropout=*/0.0);
  ca.init_random(kSeedCausal);
  print_tensor("context_vecs = CausalAttention(3, 2, 6, 0.0)(batch)",
               ca.forward(batch, reference_options()));
}

void section_multi_head() {
  const std::int64_t d_in = 3;
  const Tensor batch = two_copies_of_inputs();
  heading("3.6.1 MultiHeadAttentionWrapper, d_out=2, 2 heads (outputs concatenated)");
  MultiHeadAttentionWrapper wrapper(d_in, 2, kT, 0.0, 2);
  wrapper.init_random(kSeedCausal);
  print_tensor("context_vecs", wrapper.forward(batch, reference_options()));

  heading("3.6.2 MultiHeadAttention, d_out=2, 2 heads (head_dim 1, out_proj)");
  MultiHeadAttention mha(d_in, 2, kT, 0.0, 2);
  mha.init_random(kSeedCausal);
  print_tensor("context_vecs", mha.forward(batch, reference_options()));
}

/// The fast path against the reference on one GPT-2-small attention layer (d = 768, 12 heads,
/// qkv_bias, random weights): the largest difference and the time of each backend. T = 256
/// keeps the double-precision reference to about a second.
void section_fast_path() {
  const std::int64_t d = 768, heads = 12, tokens = 256;
  heading("Fast path vs reference: one GPT-2-small attention layer (d=768, 12 heads, T=256)");
  MultiHeadAttention mha(d, d, 1024, 0.0, heads, true);
  mha.init_random(2024);
  Tensor x({1, tokens, d});
  std::uint64_t state = 7;
  for (float& v : x.values()) {
    state = detail::mix64(state + 0x9e3779b97f4a7c15ULL);
    v = static_cast<float>(static_cast<double>(state >> 11) * (2.0 / 9007199254740992.0) - 1.0);
  }
  auto timed = [&](Backend backend, double& seconds) {
    ForwardOptions opt;
    opt.backend = backend;
    Tensor y;
    if (backend == Backend::fast) y = mha.forward(x, opt);  // warm-up: workspace, page faults
    const auto t0 = std::chrono::steady_clock::now();
    y = mha.forward(x, opt);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return y;
  };
  double t_ref = 0.0, t_fast = 0.0;
  const Tensor ref = timed(Backend::reference, t_ref);
  const Tensor fast = timed(Backend::fast, t_fast);
  double max_diff = 0.0, max_ref = 0.0;
  for (std::int64_t i = 0; i < ref.numel(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(fast[i] - ref[i])));
    max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref[i])));
  }
  std::printf("   ISA %s, %d thread(s)\n", isa_name(active_isa()), num_threads());
  std::printf("   max |fast - reference| = %.3g (max |y| = %.3g, relative %.2g)\n", max_diff,
              max_ref, max_ref > 0 ? max_diff / max_ref : 0.0);
  std::printf("   reference: %8.2f ms\n   fast:      %8.2f ms  (%.0fx)\n", 1e3 * t_ref,
              1e3 * t_fast, t_fast > 0 ? t_ref / t_fast : 0.0);
}

int demo_command(Args& args) {
  args.finish();
  std::printf("simdattn demo: chapter 3 of \"Build a Large Language Model (From Scratch)\", "
              "reference backend (fast path at the end)\n");
  section_simple_attention();
  const TensorMap v2_state = section_trainable_weights();
  section_causal(v2_state);
  section_multi_head();
  section_fast_path();
  return 0;
}

const bool registered = register_command(
    {"demo", "demo   walk through chapter 3 on the book's six-token example", demo_command});

}  // namespace
}  // namespace simdattn::cli

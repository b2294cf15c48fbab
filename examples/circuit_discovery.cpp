// Circuit discovery checked against ground truth. For every hand-set model whose circuit is
// known edge by edge (mint/toy/circuits.hpp) and for a trained 2-layer induction model (no
// ground truth), runs exact edge scores, EAP, EAP-IG (along the input and along the senders'
// activations) and ACDC, and prints per method the ROC AUC of the known edges, the
// faithfulness curve's area, the passes used and the wall time.
// On the trained model it prints how well EAP and EAP-IG agree with the exact scores; on the
// known ones, what ACDC keeps when edges are zero-ablated (positional edges included).
// Writes each model's faithfulness curves as an SVG plot and ACDC's circuit as a Graphviz file.
// Usage: circuit_discovery [output folder]   (default: circuit_discovery_out)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <mint/circuits.hpp>
#include <mint/similarity/plot.hpp>
#include <mint/toy.hpp>

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <class F>
auto timed(double& seconds, F&& f) {
  const auto start = std::chrono::steady_clock::now();
  auto out = f();
  seconds = seconds_since(start);
  return out;
}

void row(const std::string& model, const char* method, double auc, const std::string& faithfulness, const mint::circuit_cost& cost,
         double seconds) {
  char auc_text[16] = "-";
  if (!std::isnan(auc)) std::snprintf(auc_text, sizeof auc_text, "%.3f", auc);
  std::printf("| %-16s | %-10s | %7s | %-22s | %4td | %4td | %7.1f | %8.1f |\n", model.c_str(), method, auc_text,
              faithfulness.c_str(), cost.forwards, cost.backwards, cost.forward_equivalents, 1e3 * seconds);
}

std::string number(const char* format, double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path out = argc > 1 ? argv[1] : "circuit_discovery_out";
  std::filesystem::create_directories(out);

  struct model_case {
    std::string name;
    mint::toy::known_circuit circuit;
    bool known = true;
  };
  std::vector<model_case> cases;
  cases.push_back({"previous_token", mint::toy::previous_token_copy(), true});
  cases.push_back({"induction", mint::toy::induction_circuit(), true});
  cases.push_back({"mlp_lookup", mint::toy::mlp_lookup(), true});
  cases.push_back({"ioi", mint::toy::ioi_circuit(), true});
  cases.push_back({"redundant", mint::toy::redundant_copy(), true});

  // A trained induction model: 2 attention-only layers of 4 heads, split q/k/v inputs (81 edges).
  {
    const mint::toy::induction_task task{.vocab = 16, .length = 6, .sequence = 24};
    mint::toy::known_circuit trained{mint::toy::transformer<float>({.vocab = task.vocab, .context = task.context(), .d_model = 64,
                                                                     .layers = 2, .heads = 4, .d_head = 16,
                                                                     .split_qkv_input = true}),
                                     {}, {}, "trained induction (2 layers, 4 heads)",
                                     [task](mint::rng& r, mint::index rows) { return task.sample(r, rows); }};
    trained.model.initialize(1);
    mint::toy::trainer train(trained.model, task, {.steps = 400, .batch = 64, .optimizer = {.lr = 3e-3, .warmup = 50}, .seed = 3});
    for (int s = 0; s < 400; ++s) train.step();
    mint::rng held_out(99);
    std::printf("trained induction model: accuracy %.1f%% on held-out sequences\n",
                100 * mint::toy::evaluate(trained.model, task.sample(held_out, 256)).accuracy);
    cases.push_back({"trained_induction", std::move(trained), false});
  }

  std::printf("\n| model            | method     | ROC AUC | faithfulness           | fwd  | bwd  | fwd-eq  | time ms  |\n");
  std::printf("|------------------|------------|---------|------------------------|------|------|---------|----------|\n");
  for (auto& c : cases) {
    auto& model = c.circuit.model;
    const auto graph = model.graph();
    mint::rng r(4);
    const auto clean = c.circuit.sample(r, 16);
    const auto corrupt = c.circuit.sample(r, 16);
    const mint::target_cross_entropy loss{clean.rows, clean.positions, clean.targets};
    const auto truth = mint::edge_indices(graph, c.circuit.edges);
    const auto positional = mint::edge_indices(graph, c.circuit.positional_edges);
    auto auc = [&](const std::vector<double>& scores) { return c.known ? mint::roc_auc(scores, truth, positional) : NAN; };

    double t_exact = 0, t_eap = 0, t_ig = 0, t_act = 0, t_acdc = 0, t_sweep = 0;
    const auto exact = timed(t_exact, [&] { return mint::exact_edge_scores(model, graph, clean.tokens, corrupt.tokens, loss); });
    const auto eap = timed(t_eap, [&] { return mint::eap_scores(model, graph, clean.tokens, corrupt.tokens, loss); });
    const auto ig = timed(t_ig, [&] { return mint::eap_ig_scores(model, graph, clean.tokens, corrupt.tokens, loss); });
    const auto act = timed(t_act, [&] {
      return mint::eap_ig_scores(model, graph, clean.tokens, corrupt.tokens, loss, {.path = mint::eap_ig_path::activations});
    });
    const mint::kl_divergence kl(model.forward(clean.tokens), clean.tokens, /*all_positions=*/true);
    const auto found = timed(t_acdc, [&] {
      return mint::acdc(model, graph, clean.tokens, corrupt.tokens, kl, {.threshold = 0.01});
    });
    const auto taus = mint::log_thresholds(21, -4, 0);
    const auto sweep = timed(t_sweep, [&] {
      return mint::acdc_sweep(model, graph, clean.tokens, corrupt.tokens, kl, std::span<const double>(taus));
    });

    // Faithfulness: the same sizes for every scoring, so the curves share an x axis.
    mint::faithfulness_options sizes;
    const mint::index edges = mint::index(graph.edges().size());
    for (mint::index k = 0; k <= edges; ++k) sizes.sizes.push_back(k);
    std::vector<mint::faithfulness_result> curves;
    for (const auto* s : {&exact.values, &eap.values, &ig.values, &act.values})
      curves.push_back(mint::faithfulness_curve(model, graph, clean.tokens, corrupt.tokens, loss, *s, sizes));
    auto faithful = [](const mint::faithfulness_result& f) {
      return number("area %.3f", f.area) + ", 80% at " + std::to_string(f.smallest_recovering);
    };
    const std::string label = c.name + " (" + std::to_string(edges) + ")";
    row(label, "exact", auc(exact.values), faithful(curves[0]), exact.cost, t_exact);
    row(label, "EAP", auc(eap.values), faithful(curves[1]), eap.cost, t_eap);
    row(label, "EAP-IG", auc(ig.values), faithful(curves[2]), ig.cost, t_ig);
    row(label, "EAP-IG act", auc(act.values), faithful(curves[3]), act.cost, t_act);
    // ACDC: its circuit at tau = 0.01 and the metric that circuit recovers; AUC from the sweep.
    std::vector<std::vector<int>> circuits;
    for (const auto& s : sweep) circuits.push_back(s.edges);
    const double acdc_auc = c.known ? mint::circuits_roc_auc(circuits, graph.edges().size(), truth, positional) : NAN;
    const std::vector<std::vector<int>> complement{[&] {
      std::vector<int> rest;
      for (mint::index e = 0; e < edges; ++e)
        if (!std::binary_search(found.edges.begin(), found.edges.end(), int(e))) rest.push_back(int(e));
      return rest;
    }()};
    const auto kept = mint::edge_set_metrics(model, graph, clean.tokens, corrupt.tokens, loss,
                                             std::span<const std::vector<int>>(complement));
    const double recovered = (kept.values[0] - curves[0].corrupt_value) / (curves[0].clean_value - curves[0].corrupt_value);
    row(label, "ACDC", acdc_auc, number("%.3f", recovered) + " at " + std::to_string(found.edges.size()) + " edges", found.cost,
        t_acdc);

    if (c.known) {
      // Zero ablation sees what patching between inputs cannot: the positional edges.
      const auto zero = mint::acdc(model, graph, clean.tokens, mint::ablation::zero(), kl, {.threshold = 0.01});
      std::vector<int> both = truth;
      both.insert(both.end(), positional.begin(), positional.end());
      const auto pr = mint::circuit_precision_recall(zero.edges, graph.edges().size(), both);
      std::printf("|   ACDC with zero ablation: %zu edges, recall of circuit + positional edges %.2f, precision %.2f\n",
                  zero.edges.size(), pr.recall, pr.precision);
    } else {
      const std::size_t top = std::min<std::size_t>(50, exact.values.size());
      std::printf("|   agreement with exact scores on the top %zu edges: EAP rank correlation %.3f, top-%zu overlap %.2f; "
                  "EAP-IG %.3f, %.2f; EAP-IG act %.3f, %.2f (ACDC sweep of 21 taus: %.0f ms)\n",
                  top, mint::rank_correlation(eap.values, exact.values, top), top / 5,
                  mint::top_k_overlap(eap.values, exact.values, top / 5), mint::rank_correlation(ig.values, exact.values, top),
                  mint::top_k_overlap(ig.values, exact.values, top / 5), mint::rank_correlation(act.values, exact.values, top),
                  mint::top_k_overlap(act.values, exact.values, top / 5), 1e3 * t_sweep);
    }

    mint::matrixd series(edges + 1, 4);  // a column per line
    for (int m = 0; m < 4; ++m)
      for (mint::index k = 0; k <= edges; ++k) series(k, m) = curves[std::size_t(m)].recovered[std::size_t(k)];
    std::vector<double> x;
    for (mint::index k = 0; k <= edges; ++k) x.push_back(double(k));
    mint::write_line_plot_svg(out / ("faithfulness_" + c.name + ".svg"), series,
                              {.title = "faithfulness: " + c.circuit.description, .x_title = "edges kept (top k by |score|)",
                               .y_title = "metric recovered", .x = x, .series_labels = {"exact", "EAP", "EAP-IG", "EAP-IG (activations)"}});
    mint::write_circuit_dot(out / ("acdc_" + c.name + ".dot"), graph, found.edges, exact.values, "ACDC: " + c.name);
  }
  std::printf("\nwrote faithfulness_<model>.svg and acdc_<model>.dot (dot -Tsvg) to %s\n", out.string().c_str());
}

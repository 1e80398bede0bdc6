using Attention.Reference.Cases;
using Attention.Reference.Models;

namespace Attention.Reference.Tests.Support;

/// <summary>
/// Central-difference gradient checks in float64. For a case module, the scalar is L(x, θ) = Σ y ⊙ ȳ with ȳ the
/// case's <c>y.grad</c>; the analytic <c>x.grad</c> and <c>&lt;param&gt;.grad</c> must equal ∂L/∂x and ∂L/∂θ, element by
/// element (all elements, or a random subset of large tensors), and along random directions u over all of them at
/// once (vᵀ J u = ⟨u, Jᵀ v⟩).
/// </summary>
public static class GradCheck
{
    /// <summary>Finite-difference step.</summary>
    public const double DefaultStep = 1e-6;

    /// <summary>Checks every gradient the module returns for this case. Throws with a precise message on failure.</summary>
    /// <param name="module">The module.</param>
    /// <param name="config">The case config.</param>
    /// <param name="inputs">x and y.grad.</param>
    /// <param name="parameters">The state_dict.</param>
    /// <param name="maxElementsPerTensor">Check at most this many elements of each tensor (a random subset of larger ones).</param>
    /// <param name="directions">How many random directions to check in addition.</param>
    /// <param name="rtol">Relative tolerance on each derivative.</param>
    /// <param name="atolScale">Absolute tolerance, as a fraction of max(1, max |gradient|) of the tensor.</param>
    /// <param name="step">Finite-difference step.</param>
    /// <param name="seed">Seed for the subset and the directions.</param>
    /// <returns>The number of derivatives checked.</returns>
    public static int CheckCase(ModelFactory module, CaseConfig config, TensorSet<double> inputs, TensorSet<double> parameters,
        int maxElementsPerTensor = 400, int directions = 3, double rtol = 1e-6, double atolScale = 1e-7,
        double step = DefaultStep, int seed = 12345)
    {
        var ybar = inputs.Get("y.grad");
        var analytic = module.Run(config, inputs, parameters, RunOptions.Default);
        var forwardInputs = new TensorSet<double>("inputs");
        forwardInputs.Set("x", inputs.Get("x"));

        double Loss(TensorSet<double> ins, TensorSet<double> ps)
        {
            var y = module.Run(config, ins, ps, RunOptions.Default).Get("y");
            double sum = 0;
            for (int i = 0; i < y.Length; i++) sum += y.Data[i] * ybar.Data[i];
            return sum;
        }

        // The differentiable tensors: x and every parameter whose gradient the module returned.
        var targets = new List<(string Name, DenseTensor<double> Value, DenseTensor<double> Grad, bool IsInput)>
        {
            ("x", inputs.Get("x"), analytic.Get("x.grad"), true),
        };
        foreach (var name in parameters.Names)
            if (analytic.TryGet(name + ".grad") is { } g) targets.Add((name, parameters.Get(name), g, false));

        var rng = new Random(seed);
        int checkedCount = 0;
        var failures = new List<string>();
        foreach (var (name, value, grad, isInput) in targets)
        {
            if (!grad.HasShape(value.Shape))
                failures.Add($"{name}.grad has shape {grad.ShapeString}, the tensor {value.ShapeString}");
            double atol = atolScale * Math.Max(1, grad.Data.Select(Math.Abs).DefaultIfEmpty(0).Max());
            foreach (int i in Subset(value.Length, maxElementsPerTensor, rng))
            {
                double Perturbed(double delta)
                {
                    var copy = value.Clone();
                    copy.Data[i] += delta;
                    return isInput ? Loss(Replace(forwardInputs, name, copy), parameters) : Loss(forwardInputs, Replace(parameters, name, copy));
                }
                double numeric = (Perturbed(step) - Perturbed(-step)) / (2 * step);
                double a = grad.Data[i];
                if (!(Math.Abs(numeric - a) <= atol + rtol * Math.Abs(a)))
                    failures.Add($"∂L/∂{name}[{string.Join(",", Reference.IO.TensorComparer.Unravel(i, value.ShapeArray()))}]: analytic {a:R}, numeric {numeric:R}, diff {Math.Abs(numeric - a):E2} > {atol + rtol * Math.Abs(a):E2}");
                checkedCount++;
            }
        }

        for (int d = 0; d < directions; d++)
        {
            var us = targets.Select(t => RandomLike(t.Value, rng)).ToList();
            double predicted = 0, scale = 0;
            for (int k = 0; k < targets.Count; k++)
                for (int i = 0; i < us[k].Length; i++)
                {
                    predicted += targets[k].Grad.Data[i] * us[k].Data[i];
                    scale += Math.Abs(targets[k].Grad.Data[i] * us[k].Data[i]);
                }
            double Along(double t)
            {
                var ins = forwardInputs;
                var ps = parameters;
                for (int k = 0; k < targets.Count; k++)
                {
                    var moved = targets[k].Value.Clone();
                    for (int i = 0; i < moved.Length; i++) moved.Data[i] += t * us[k].Data[i];
                    if (targets[k].IsInput) ins = Replace(ins, targets[k].Name, moved);
                    else ps = Replace(ps, targets[k].Name, moved);
                }
                return Loss(ins, ps);
            }
            double numeric = (Along(step) - Along(-step)) / (2 * step);
            double tol = atolScale * Math.Max(1, scale) + rtol * Math.Abs(predicted);
            if (!(Math.Abs(numeric - predicted) <= tol))
                failures.Add($"direction {d}: ⟨∇L, u⟩ analytic {predicted:R}, numeric {numeric:R}, diff {Math.Abs(numeric - predicted):E2} > {tol:E2}");
            checkedCount++;
        }

        if (failures.Count > 0)
            throw new Xunit.Sdk.XunitException($"gradcheck of '{module.Name}' {config} failed for {failures.Count} of {checkedCount} derivatives:\n  " +
                                               string.Join("\n  ", failures.Take(20)));
        return checkedCount;
    }

    /// <summary>Checks a generated case.</summary>
    public static int CheckCase(ModelFactory module, GeneratedCase c, int maxElementsPerTensor = 400, double rtol = 1e-6, double atolScale = 1e-7) =>
        CheckCase(module, c.Config, c.Inputs, c.Parameters, maxElementsPerTensor, rtol: rtol, atolScale: atolScale);

    private static TensorSet<double> Replace(TensorSet<double> set, string name, DenseTensor<double> value)
    {
        var copy = new TensorSet<double>(set.Description);
        foreach (var (n, t) in set) copy.Set(n, n == name ? value : t);
        return copy;
    }

    private static IEnumerable<int> Subset(int length, int max, Random rng)
    {
        if (length <= max) return Enumerable.Range(0, length);
        return Enumerable.Range(0, length).OrderBy(_ => rng.Next()).Take(max).Order();
    }

    private static DenseTensor<double> RandomLike(DenseTensor<double> t, Random rng)
    {
        var u = t.ZerosLike();
        for (int i = 0; i < u.Length; i++) u.Data[i] = rng.NextDouble() * 2 - 1;
        return u;
    }
}

namespace Attention.Reference.Ops;

/// <summary>The result of <see cref="BatchNorm2d.ForwardTrain{T}"/>: the output, the batch statistics and the updated buffers.</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class BatchNormTrainResult<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The normalised output, the shape of the input. Eq. (bn.9)–(bn.11).</summary>
    public required DenseTensor<T> Y { get; init; }

    /// <summary>The batch mean μ_c, [C]. Eq. (bn.5).</summary>
    public required DenseTensor<T> Mean { get; init; }

    /// <summary>The biased batch variance σ²_c (divided by the count m), [C]. Eq. (bn.6).</summary>
    public required DenseTensor<T> Var { get; init; }

    /// <summary>The inverse standard deviation 1 / sqrt(σ²_c + ε), [C]. Eq. (bn.7).</summary>
    public required DenseTensor<T> InvStd { get; init; }

    /// <summary>The updated running mean, [C]. Eq. (bn.12).</summary>
    public required DenseTensor<T> RunningMean { get; init; }

    /// <summary>The updated running variance (unbiased batch variance in the update), [C]. Eq. (bn.13).</summary>
    public required DenseTensor<T> RunningVar { get; init; }
}

/// <summary>The gradients of a BatchNorm2d call.</summary>
/// <typeparam name="T">float or double.</typeparam>
/// <param name="X">∂L/∂x, the shape of the input.</param>
/// <param name="Weight">∂L/∂γ, [C] (null when the layer has no weight).</param>
/// <param name="Bias">∂L/∂β, [C] (null when the layer has no bias).</param>
public sealed record BatchNormGradients<T>(DenseTensor<T> X, DenseTensor<T>? Weight, DenseTensor<T>? Bias)
    where T : IFloatingPointIeee754<T>;

/// <summary>
/// <c>nn.BatchNorm2d</c> on NCHW tensors, forward and backward side by side, in eval mode (running statistics) and in
/// training mode (batch statistics, running-statistics update), evaluated as ATen's CPU kernels evaluate it
/// (docs/derivations/batchnorm.md).
/// <para>
/// Every per-channel reduction is a sequential sum in increasing index order, n outer, then h, then w (the memory
/// order of the channel's elements), independent of <see cref="Compute.MaxThreads"/>: parallel loops run over channels,
/// each channel's sums are computed by one thread.
/// </para>
/// A null weight means γ = 1 and a null bias β = 0 (<c>affine=False</c>); their gradients are then null.
/// </summary>
public static class BatchNorm2d
{
    /// <summary>
    /// Eval mode: y = x·α + β' with α_c = γ_c / sqrt(running_var_c + ε) and β'_c = β_c − running_mean_c·α_c,
    /// Eq. (bn.1)–(bn.4).
    /// </summary>
    /// <param name="x">The input [N, C, H, W].</param>
    /// <param name="weight">γ [C], or null.</param>
    /// <param name="bias">β [C], or null.</param>
    /// <param name="runningMean">The running mean [C].</param>
    /// <param name="runningVar">The running variance [C]; every element must be ≥ 0.</param>
    /// <param name="eps">ε, added to the variance.</param>
    /// <param name="name">The layer's state_dict prefix, for messages (e.g. "bn1").</param>
    /// <exception cref="ShapeMismatchException">A parameter's shape is not [C].</exception>
    /// <exception cref="ArgumentException">running_var has a negative or NaN element, or var + ε is not positive.</exception>
    public static DenseTensor<T> ForwardEval<T>(DenseTensor<T> x, DenseTensor<T>? weight, DenseTensor<T>? bias,
        DenseTensor<T> runningMean, DenseTensor<T> runningVar, double eps, string name = "bn")
        where T : IFloatingPointIeee754<T>
    {
        var (n, c, s) = CheckShapes(x, weight, bias, runningMean, runningVar, name);
        var invStd = EvalInvStd(runningVar, eps, name);
        var y = x.ZerosLike();
        T[] xd = x.Data, yd = y.Data;
        Compute.For(c, ch =>
        {
            // Eq. (bn.2)–(bn.3): α = invstd·γ, β' = β − μ·α (ATen's batch_norm_cpu_collect_linear_and_constant_terms).
            T alpha = weight is null ? invStd[ch] : invStd[ch] * weight.Data[ch];
            T beta = (bias is null ? T.Zero : bias.Data[ch]) - runningMean.Data[ch] * alpha;
            for (int i = 0; i < n; i++)
            {
                int o = (i * c + ch) * s;
                for (int k = 0; k < s; k++) yd[o + k] = xd[o + k] * alpha + beta; // Eq. (bn.4)
            }
        });
        return y;
    }

    /// <summary>
    /// Eval-mode backward, Eq. (bn.14)–(bn.16): ∂L/∂x = g·invstd·γ, ∂L/∂γ = invstd·Σ (x − running_mean)·g,
    /// ∂L/∂β = Σ g (sums per channel over n, h, w in that order).
    /// </summary>
    /// <param name="dy">∂L/∂y [N, C, H, W].</param>
    /// <param name="x">The forward input [N, C, H, W].</param>
    /// <param name="weight">γ [C], or null.</param>
    /// <param name="runningMean">The running mean [C].</param>
    /// <param name="runningVar">The running variance [C].</param>
    /// <param name="eps">ε.</param>
    /// <param name="hasBias">Whether the layer has a bias (whether to return ∂L/∂β).</param>
    /// <param name="name">The layer's state_dict prefix, for messages.</param>
    public static BatchNormGradients<T> BackwardEval<T>(DenseTensor<T> dy, DenseTensor<T> x, DenseTensor<T>? weight,
        DenseTensor<T> runningMean, DenseTensor<T> runningVar, double eps, bool hasBias = true, string name = "bn")
        where T : IFloatingPointIeee754<T>
    {
        var (n, c, s) = CheckShapes(x, weight, null, runningMean, runningVar, name);
        ShapeUtil.Require(dy, name + " output grad", x.ShapeArray());
        var invStd = EvalInvStd(runningVar, eps, name);
        return BackwardCore(dy, x, weight, runningMean.Data, invStd, hasBias, train: false, n, c, s);
    }

    /// <summary>
    /// Training mode, Eq. (bn.5)–(bn.13): normalises with the batch mean and the biased batch variance over the
    /// m = N·H·W values of each channel, and updates the running statistics with <paramref name="momentum"/>, using the
    /// unbiased variance (divided by m − 1), as PyTorch does. The inputs are not modified.
    /// </summary>
    /// <param name="x">The input [N, C, H, W]; m = N·H·W must be at least 2.</param>
    /// <param name="weight">γ [C], or null.</param>
    /// <param name="bias">β [C], or null.</param>
    /// <param name="runningMean">The running mean [C] before the update.</param>
    /// <param name="runningVar">The running variance [C] before the update; every element must be ≥ 0.</param>
    /// <param name="eps">ε.</param>
    /// <param name="momentum">The running-average momentum (PyTorch's default 0.1).</param>
    /// <param name="name">The layer's state_dict prefix, for messages.</param>
    /// <exception cref="ArgumentException">m &lt; 2 ("Expected more than 1 value per channel when training"), or a negative running_var.</exception>
    public static BatchNormTrainResult<T> ForwardTrain<T>(DenseTensor<T> x, DenseTensor<T>? weight, DenseTensor<T>? bias,
        DenseTensor<T> runningMean, DenseTensor<T> runningVar, double eps, double momentum, string name = "bn")
        where T : IFloatingPointIeee754<T>
    {
        var (n, c, s) = CheckShapes(x, weight, bias, runningMean, runningVar, name);
        CheckRunningVar(runningVar, name);
        long m = (long)n * s;
        if (m < 2)
            throw new ArgumentException(
                $"{name}: expected more than 1 value per channel when training, got input of shape {x.ShapeString} ({m} value(s) per channel).",
                nameof(x));
        T mT = T.CreateChecked(m), m1 = T.CreateChecked(m - 1), epsT = T.CreateChecked(eps);
        T mom = T.CreateChecked(momentum), oneMinusMom = T.One - mom;
        var mean = new DenseTensor<T>(c);
        var variance = new DenseTensor<T>(c);
        var invStd = new DenseTensor<T>(c);
        var newRm = new DenseTensor<T>(c);
        var newRv = new DenseTensor<T>(c);
        var y = x.ZerosLike();
        T[] xd = x.Data, yd = y.Data;
        Compute.For(c, ch =>
        {
            // Eq. (bn.5): μ = (Σ x) / m, sequential sum, n outer, h·w inner.
            T sum = T.Zero;
            for (int i = 0; i < n; i++)
            {
                int o = (i * c + ch) * s;
                for (int k = 0; k < s; k++) sum += xd[o + k];
            }
            T mu = sum / mT;
            // Eq. (bn.6): Σ (x − μ)², same order; σ² = that / m (biased).
            T varSum = T.Zero;
            for (int i = 0; i < n; i++)
            {
                int o = (i * c + ch) * s;
                for (int k = 0; k < s; k++)
                {
                    T d = xd[o + k] - mu;
                    varSum += d * d;
                }
            }
            T v = varSum / mT;
            T inv = T.One / T.Sqrt(v + epsT); // Eq. (bn.7)
            mean.Data[ch] = mu;
            variance.Data[ch] = v;
            invStd.Data[ch] = inv;
            // Eq. (bn.12)–(bn.13): running-statistics update, unbiased variance Σ (x − μ)² / (m − 1).
            newRm.Data[ch] = mom * mu + oneMinusMom * runningMean.Data[ch];
            newRv.Data[ch] = mom * (varSum / m1) + oneMinusMom * runningVar.Data[ch];
            // Eq. (bn.8)–(bn.11): α = invstd·γ, β' = β − μ·α, y = x·α + β'.
            T alpha = weight is null ? inv : inv * weight.Data[ch];
            T beta = (bias is null ? T.Zero : bias.Data[ch]) - mu * alpha;
            for (int i = 0; i < n; i++)
            {
                int o = (i * c + ch) * s;
                for (int k = 0; k < s; k++) yd[o + k] = xd[o + k] * alpha + beta;
            }
        });
        return new BatchNormTrainResult<T>
        {
            Y = y, Mean = mean, Var = variance, InvStd = invStd, RunningMean = newRm, RunningVar = newRv,
        };
    }

    /// <summary>
    /// Training-mode backward, Eq. (bn.17)–(bn.21): with Σg and Σ(x − μ)·g per channel,
    /// ∂L/∂x = (g − Σg/m − (x − μ)·Σ(x − μ)g·invstd²/m)·invstd·γ, ∂L/∂γ = Σ(x − μ)g·invstd, ∂L/∂β = Σg.
    /// </summary>
    /// <param name="dy">∂L/∂y [N, C, H, W].</param>
    /// <param name="x">The forward input.</param>
    /// <param name="weight">γ [C], or null.</param>
    /// <param name="forward">The forward result (batch mean and inverse standard deviation).</param>
    /// <param name="hasBias">Whether to return ∂L/∂β.</param>
    /// <param name="name">The layer's state_dict prefix, for messages.</param>
    public static BatchNormGradients<T> BackwardTrain<T>(DenseTensor<T> dy, DenseTensor<T> x, DenseTensor<T>? weight,
        BatchNormTrainResult<T> forward, bool hasBias = true, string name = "bn")
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(forward);
        var (n, c, s) = CheckShapes(x, weight, null, forward.Mean, forward.InvStd, name);
        ShapeUtil.Require(dy, name + " output grad", x.ShapeArray());
        return BackwardCore(dy, x, weight, forward.Mean.Data, forward.InvStd.Data, hasBias, train: true, n, c, s);
    }

    private static BatchNormGradients<T> BackwardCore<T>(DenseTensor<T> dy, DenseTensor<T> x, DenseTensor<T>? weight,
        T[] mean, T[] invStd, bool hasBias, bool train, int n, int c, int s)
        where T : IFloatingPointIeee754<T>
    {
        var dx = x.ZerosLike();
        var dw = weight is null ? null : new DenseTensor<T>(c);
        var db = hasBias ? new DenseTensor<T>(c) : null;
        T[] xd = x.Data, gd = dy.Data, dxd = dx.Data;
        T mT = T.CreateChecked((long)n * s);
        Compute.For(c, ch =>
        {
            T mu = mean[ch], inv = invStd[ch];
            T w = weight is null ? T.One : weight.Data[ch];
            // Eq. (bn.15)/(bn.18): Σ g and Σ (x − μ)·g, sequential, n outer, h·w inner.
            T sum = T.Zero, dot = T.Zero;
            for (int i = 0; i < n; i++)
            {
                int o = (i * c + ch) * s;
                for (int k = 0; k < s; k++)
                {
                    sum += gd[o + k];
                    dot += (xd[o + k] - mu) * gd[o + k];
                }
            }
            if (train)
            {
                // Eq. (bn.19): k = dot·invstd²/m, grad_mean = Σg/m, dx = (g − grad_mean − (x − μ)·k)·invstd·γ.
                T kk = dot * inv * inv / mT;
                T gradMean = sum / mT;
                for (int i = 0; i < n; i++)
                {
                    int o = (i * c + ch) * s;
                    for (int k = 0; k < s; k++)
                        dxd[o + k] = (gd[o + k] - gradMean - (xd[o + k] - mu) * kk) * inv * w;
                }
            }
            else
            {
                // Eq. (bn.14): dx = g·invstd·γ.
                for (int i = 0; i < n; i++)
                {
                    int o = (i * c + ch) * s;
                    for (int k = 0; k < s; k++) dxd[o + k] = gd[o + k] * inv * w;
                }
            }
            if (dw is not null) dw.Data[ch] = dot * inv; // Eq. (bn.16)/(bn.20)
            if (db is not null) db.Data[ch] = sum;       // Eq. (bn.15)/(bn.21)
        });
        return new BatchNormGradients<T>(dx, dw, db);
    }

    /// <summary>Eq. (bn.1): invstd_c = 1 / sqrt(running_var_c + ε), after checking running_var ≥ 0.</summary>
    /// <summary>
    /// Eqs. (bn.2)–(bn.3): the eval-mode affine coefficients per channel, α = invstd·γ and β' = β − μ·α, exactly as
    /// <see cref="ForwardEval{T}"/> computes them (y = x·α + β').
    /// </summary>
    public static (T[] Alpha, T[] Beta) EvalAffine<T>(DenseTensor<T>? weight, DenseTensor<T>? bias, DenseTensor<T> runningMean,
        DenseTensor<T> runningVar, double eps, string name = "bn") where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(runningMean);
        var invStd = EvalInvStd(runningVar, eps, name);
        int c = runningMean.Length;
        var alpha = new T[c];
        var beta = new T[c];
        for (int ch = 0; ch < c; ch++)
        {
            alpha[ch] = weight is null ? invStd[ch] : invStd[ch] * weight.Data[ch];
            beta[ch] = (bias is null ? T.Zero : bias.Data[ch]) - runningMean.Data[ch] * alpha[ch];
        }
        return (alpha, beta);
    }

    private static T[] EvalInvStd<T>(DenseTensor<T> runningVar, double eps, string name) where T : IFloatingPointIeee754<T>
    {
        CheckRunningVar(runningVar, name);
        T epsT = T.CreateChecked(eps);
        var inv = new T[runningVar.Length];
        for (int ch = 0; ch < inv.Length; ch++)
        {
            T v = runningVar.Data[ch] + epsT;
            if (!(v > T.Zero))
                throw new ArgumentException(
                    $"{name}.running_var[{ch}] + eps = {v} is not positive (running_var = {runningVar.Data[ch]}, eps = {eps}); cannot normalise.");
            inv[ch] = T.One / T.Sqrt(v);
        }
        return inv;
    }

    private static void CheckRunningVar<T>(DenseTensor<T> runningVar, string name) where T : IFloatingPointIeee754<T>
    {
        for (int ch = 0; ch < runningVar.Length; ch++)
        {
            T v = runningVar.Data[ch];
            if (!(v >= T.Zero))
                throw new ArgumentException(
                    $"{name}.running_var[{ch}] = {v}: a variance must be non-negative (and not NaN); expected every element ≥ 0.");
        }
    }

    private static (int N, int C, int S) CheckShapes<T>(DenseTensor<T> x, DenseTensor<T>? weight, DenseTensor<T>? bias,
        DenseTensor<T> mean, DenseTensor<T> var, string name) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(var);
        ShapeUtil.RequireRank(x, name + " input", 4, "N, C, H, W");
        int c = x.Dim(1);
        if (weight is not null) ShapeUtil.Require(weight, name + ".weight", c);
        if (bias is not null) ShapeUtil.Require(bias, name + ".bias", c);
        ShapeUtil.Require(mean, name + ".running_mean", c);
        ShapeUtil.Require(var, name + ".running_var", c);
        return (x.Dim(0), c, x.Dim(2) * x.Dim(3));
    }
}

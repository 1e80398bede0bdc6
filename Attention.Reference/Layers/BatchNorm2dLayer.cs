using Attention.Reference.Ops;

namespace Attention.Reference.Layers;

/// <summary>
/// <c>nn.BatchNorm2d(C, eps, momentum)</c>: parameters <c>weight</c>, <c>bias</c>; buffers <c>running_mean</c>,
/// <c>running_var</c>; the integer <c>num_batches_tracked</c> is accepted in a state_dict and ignored (with a
/// momentum it does not enter the arithmetic). Eval mode normalises with the running statistics; training mode
/// with the batch statistics and updates the running ones (docs/derivations/batchnorm.md, Eqs. (bn.1)–(bn.21)).
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class BatchNorm2dLayer<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>Creates the layer with PyTorch's initial values (γ = 1, β = 0, mean 0, var 1).</summary>
    public BatchNorm2dLayer(int channels, double eps = 1e-5, double momentum = 0.1)
    {
        if (channels < 1) throw new ArgumentException($"BatchNorm2d: num_features must be at least 1, got {channels}.");
        Channels = channels;
        Eps = eps;
        Momentum = momentum;
        Weight = Param("weight", [channels], 1);
        Bias = Param("bias", [channels]);
        RunningMean = Buffer("running_mean", [channels]);
        RunningVar = Buffer("running_var", [channels], 1);
        IgnoredKey("num_batches_tracked");
    }

    /// <summary>C.</summary>
    public int Channels { get; }

    /// <summary>ε, added to the variance.</summary>
    public double Eps { get; }

    /// <summary>The running-average momentum.</summary>
    public double Momentum { get; }

    /// <summary>γ.</summary>
    public Parameter<T> Weight { get; }

    /// <summary>β.</summary>
    public Parameter<T> Bias { get; }

    /// <summary>The running mean.</summary>
    public Parameter<T> RunningMean { get; }

    /// <summary>The running variance.</summary>
    public Parameter<T> RunningVar { get; }

    /// <summary>
    /// The derivation's (equation, name) of the batch mean and variance a training-mode forward records in the pass's
    /// trace (Coordinate Attention's bn1), or null.
    /// </summary>
    internal ((string Equation, string Name) Mean, (string Equation, string Name) Var)? TraceBatchStatistics { get; init; }

    /// <inheritdoc />
    public override string Kind => "BatchNorm2d";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input, Channels);
        return input;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (!pass.Training && _affine is not null && pass.InPlaceAllowed) return PlanForward(x, pass);
        string name = DisplayName;
        if (!pass.Training)
        {
            Save(pass, x);
            return BatchNorm2d.ForwardEval(x, Weight.Value, Bias.Value, RunningMean.Value, RunningVar.Value, Eps, name);
        }
        var r = BatchNorm2d.ForwardTrain(x, Weight.Value, Bias.Value, RunningMean.Value, RunningVar.Value, Eps, Momentum, name);
        if (TraceBatchStatistics is var ((meq, mname), (veq, vname)))
        {
            pass.Trace?.Forward(meq, mname, r.Mean);
            pass.Trace?.Forward(veq, vname, r.Var);
        }
        RunningMean.Value = r.RunningMean;
        RunningVar.Value = r.RunningVar;
        Save(pass, (x, r));
        return r.Y;
    }

    /// <summary>
    /// An inference plan's eval BatchNorm that no convolution absorbed (Coordinate Attention's bn1 after a linear
    /// layer): α and β' computed once (<see cref="BatchNorm2d.EvalAffine"/>, the values ForwardEval computes per call),
    /// y = x·α + β' (Eq. (bn.4), multiply then add) into x when this layer owns it, else into its own buffer.
    /// </summary>
    private DenseTensor<T> PlanForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (x.Rank != 4 || x.Dim(1) != Channels) RequireNchw(x.ShapeArray(), Channels);
        var y = pass.MayOverwriteInput(this) ? x : pass.Uninitialized(this, "y", x.Shape);
        int n = x.Dim(0), plane = x.Dim(2) * x.Dim(3);
        Compute.For(n * Channels, new AffinePlanes { X = x.Data, Y = y.Data, Alpha = _affine!.Value.Alpha, Beta = _affine.Value.Beta, C = Channels, Plane = plane });
        return y;
    }

    private (T[] Alpha, T[] Beta)? _affine;

    /// <inheritdoc />
    /// <summary>
    /// Inference plans: the statistics are fixed from here on (like a folded convolution, a plan's BatchNorm takes them
    /// when the plan is compiled), so α and β' are computed once.
    /// </summary>
    internal void Freeze() =>
        _affine = BatchNorm2d.EvalAffine(Weight.Value, Bias.Value, RunningMean.Value, RunningVar.Value, Eps, DisplayName);

    private struct AffinePlanes : IForBody
    {
        public T[] X, Y, Alpha, Beta;
        public int C, Plane;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int p)
        {
            T a = Alpha[p % C], b = Beta[p % C];
            var x = X.AsSpan(p * Plane, Plane);
            var y = Y.AsSpan(p * Plane, Plane);
            for (int k = 0; k < x.Length; k++) y[k] = x[k] * a + b;
        }
    }

    /// <summary>
    /// Eval mode only: y = x·α + β' (Mul, Add) with the oracle's own per-channel α and β' as initializers
    /// <c>path.eval_scale</c> and <c>path.eval_shift</c> ([C, 1, 1]). ONNX's BatchNormalization would take ε as a
    /// float32 attribute and round differently, and PyTorch's exporter folds the BatchNorm into the convolution.
    /// </summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var (alpha, beta) = Ops.BatchNorm2d.EvalAffine(Weight.Value, Bias.Value, RunningMean.Value, RunningVar.Value, Eps, DisplayName);
        var shape = writer.Shape(input);
        string a = writer.Tensor(KeyOf(Weight)[..^"weight".Length] + "eval_scale", new DenseTensor<T>(alpha, Channels, 1, 1));
        string b = writer.Tensor(KeyOf(Weight)[..^"weight".Length] + "eval_shift", new DenseTensor<T>(beta, Channels, 1, 1));
        return writer.Node(this, "Add", [writer.Node(this, "Mul", [input, a], shape), b], shape);
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        BatchNormGradients<T> g;
        if (!pass.Training)
        {
            var x = Restore<DenseTensor<T>>(pass);
            g = BatchNorm2d.BackwardEval(dy, x, Weight.Value, RunningMean.Value, RunningVar.Value, Eps, true, DisplayName);
        }
        else
        {
            var (x, r) = Restore<(DenseTensor<T>, BatchNormTrainResult<T>)>(pass);
            g = BatchNorm2d.BackwardTrain(dy, x, Weight.Value, r, true, DisplayName);
        }
        Weight.Accumulate(g.Weight!);
        Bias.Accumulate(g.Bias!);
        return g.X;
    }
}

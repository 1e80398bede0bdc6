using Attention.Reference.Ops;

namespace Attention.Reference.Layers;

/// <summary>
/// The authors' <c>GCT(num_channels, epsilon=1e-5, mode='l2', after_relu=False)</c>: parameters <c>alpha</c>,
/// <c>gamma</c>, <c>beta</c>, each [1, C, 1, 1] (initial 1, 0, 0: the identity). Forward and backward are the spec op
/// <see cref="Gct"/>'s (docs/derivations/gct.md, Eqs. (gct.1)–(gct.20)), the same code for float64 and float32.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class GctLayer<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>Creates the layer with the authors' initial values (channels ≥ 0: a case may hold zero channels).</summary>
    public GctLayer(int channels, double epsilon = Gct.DefaultEpsilon, GctMode mode = GctMode.L2,
        bool afterRelu = false)
    {
        if (channels < 0) throw new ArgumentOutOfRangeException(nameof(channels), channels, $"GCT: num_channels must be at least 0, got {channels}.");
        if (!double.IsFinite(epsilon) || epsilon < 0)
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, $"GCT epsilon must be a finite number >= 0, got {epsilon}.");
        if (mode is not (GctMode.L2 or GctMode.L1)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown GCT mode.");
        Epsilon = epsilon;
        Mode = mode;
        AfterRelu = afterRelu;
        Alpha = Param("alpha", [1, channels, 1, 1], 1);
        Gamma = Param("gamma", [1, channels, 1, 1]);
        Beta = Param("beta", [1, channels, 1, 1]);
    }

    /// <summary>ε.</summary>
    public double Epsilon { get; }
    /// <summary>l2 or l1.</summary>
    public GctMode Mode { get; }
    /// <summary>after_relu (l1 only: skips the absolute value).</summary>
    public bool AfterRelu { get; }
    /// <summary>α.</summary>
    public Parameter<T> Alpha { get; }
    /// <summary>γ.</summary>
    public Parameter<T> Gamma { get; }
    /// <summary>β.</summary>
    public Parameter<T> Beta { get; }

    /// <inheritdoc />
    public override string Kind => "GCT";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input, Alpha.Value.Dim(1));
        return input;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        // The pass provides the output buffer; a pass that keeps buffers and records nothing also keeps the per-channel
        // state from one forward to the next (an inference plan's forward allocates nothing).
        var y = pass.Uninitialized(this, "y", x.Shape);
        var keep = pass.RecordTape ? null : pass.Buffers;
        var f = Gct.Forward(x, Alpha.Value, Gamma.Value, Beta.Value, Epsilon, Mode, AfterRelu, y, pass.Trace,
            keep?.State<GctForward<T>>(this, "state"), pass.SumOrder);
        keep?.Keep(this, "state", f);
        pass.OnGate?.Invoke(DisplayName, f.Gate);
        Save(pass, f);
        return f.Y;
    }


    /// <summary>
    /// Eqs. (gct.1)–(gct.9) as GCT.py exports them, with x² as Mul(x, x) (ONNX's Pow would be libm's pow): l2 —
    /// ReduceSum over (2, 3), Add ε, Sqrt, Mul α; ReduceMean over channels of s·s, Add ε, Sqrt; γ / D; s·k + β; Tanh;
    /// 1 + t; Mul(x, gate). l1 — Abs (unless after_relu), ReduceSum, Mul α; ReduceMean of |s|, Add ε; the rest alike.
    /// </summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var sh = writer.Shape(input);
        int[] pc = [sh[0], sh[1], 1, 1], pn = [sh[0], 1, 1, 1];
        string Op(string op, int[] shape, params string[] inputs) => writer.Node(this, op, inputs, shape);
        var keep = new Dictionary<string, object> { ["keepdims"] = 1L };
        string alpha = writer.Tensor(KeyOf(Alpha), Alpha.Value), gamma = writer.Tensor(KeyOf(Gamma), Gamma.Value);
        string beta = writer.Tensor(KeyOf(Beta), Beta.Value), eps = writer.Scalar(Epsilon);
        string s, d;
        if (Mode == GctMode.L2)
        {
            string sum = writer.Node(this, "ReduceSum", [Op("Mul", sh, input, input), writer.Int64s(2, 3)], pc, keep);
            s = Op("Mul", pc, Op("Sqrt", pc, Op("Add", pc, sum, eps)), alpha);
            string m = writer.Node(this, "ReduceMean", [Op("Mul", pc, s, s)], pn, new Dictionary<string, object> { ["axes"] = new[] { 1 }, ["keepdims"] = 1L });
            d = Op("Sqrt", pn, Op("Add", pn, m, eps));
        }
        else
        {
            string sum = writer.Node(this, "ReduceSum", [AfterRelu ? input : Op("Abs", sh, input), writer.Int64s(2, 3)], pc, keep);
            s = Op("Mul", pc, sum, alpha);
            string m = writer.Node(this, "ReduceMean", [Op("Abs", pc, s)], pn, new Dictionary<string, object> { ["axes"] = new[] { 1 }, ["keepdims"] = 1L });
            d = Op("Add", pn, m, eps);
        }
        string u = Op("Add", pc, Op("Mul", pc, s, Op("Div", pc, gamma, d)), beta);
        string gate = Op("Add", pc, writer.Scalar(1), Op("Tanh", pc, u));
        return Op("Mul", sh, input, gate);
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var f = Restore<GctForward<T>>(pass);
        var g = Gct.Backward(f, dy, pass.Uninitialized(this, "dx", f.X.ShapeArray()), pass.Trace);
        Alpha.Accumulate(g.Alpha);
        Gamma.Accumulate(g.Gamma);
        Beta.Accumulate(g.Beta);
        return g.X;
    }
}

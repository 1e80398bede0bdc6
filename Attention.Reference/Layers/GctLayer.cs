using System.Numerics;
using Attention.Reference.Modules;
using Attention.Reference.Tensors;

namespace Attention.Reference.Layers;

/// <summary>
/// The authors' <c>GCT(num_channels, epsilon=1e-5, mode='l2', after_relu=False)</c>: parameters <c>alpha</c>,
/// <c>gamma</c>, <c>beta</c>, each [1, C, 1, 1] (initial 1, 0, 0: the identity). Forward and backward are
/// <see cref="GatedChannelTransformation{T}"/>'s (docs/derivations/gct.md, Eqs. (gct.1)–(gct.20)); float32 on the
/// fast path runs <see cref="GatedChannelTransformationFast"/>.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class GctLayer<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>Creates the layer with the authors' initial values (channels ≥ 0: a case may hold zero channels).</summary>
    public GctLayer(int channels, double epsilon = GatedChannelTransformation<double>.DefaultEpsilon, GctMode mode = GctMode.L2,
        bool afterRelu = false)
    {
        if (channels < 0) throw new ArgumentException($"GCT: num_channels must be at least 0, got {channels}.");
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

    private GatedChannelTransformation<T> Module() => new(Alpha.Value, Gamma.Value, Beta.Value, Epsilon, Mode, AfterRelu);

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input, Alpha.Value.Dim(1));
        return input;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (pass.Kernels == KernelPath.Fast && typeof(T) == typeof(float) && pass.Trace is null)
        {
            var xf = (DenseTensor<float>)(object)x;
            if (Inference && pass.InPlaceAllowed && !pass.RecordTape)
            {
                // Inference plan: the module (its parameters are fixed), the workspace and the output buffer are
                // kept from one forward to the next (a GCT runs once per forward), so the forward allocates nothing.
                _planModule ??= (GatedChannelTransformation<float>)(object)Module();
                if (_planOutput is null || !_planOutput.HasShape(x.Shape)) _planOutput = new DenseTensor<float>(x.ShapeArray());
                GatedChannelTransformationFast.Forward(_planModule, xf, _planOutput, _planWorkspace);
                return (DenseTensor<T>)(object)_planOutput;
            }
            var mf = (GatedChannelTransformation<float>)(object)Module();
            var yf = new DenseTensor<float>(x.ShapeArray());
            var ws = GatedChannelTransformationFast.Forward(mf, xf, yf);
            Save(pass, (object)(mf, xf, ws));
            return (DenseTensor<T>)(object)yf;
        }
        var m = Module();
        var f = m.Forward(x, pass.Trace);
        if (pass.OnGate is not null) pass.OnGate(DisplayName, f.Gate);
        Save(pass, f);
        return f.Y;
    }

    private GatedChannelTransformation<float>? _planModule;
    private DenseTensor<float>? _planOutput;
    private readonly GctFastWorkspace _planWorkspace = new();

    /// <inheritdoc />
    protected internal override bool OutputIsOwnBuffer => true;

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
        var saved = Restore<object>(pass);
        GctGradients<T> g;
        if (saved is GctForward<T> f) g = f.Module.Backward(f, dy, pass.Trace);
        else
        {
            var (mf, xf, ws) = ((GatedChannelTransformation<float>, DenseTensor<float>, GctFastWorkspace))saved;
            var dx = new DenseTensor<float>(xf.ShapeArray());
            g = (GctGradients<T>)(object)GatedChannelTransformationFast.Backward(mf, xf, (DenseTensor<float>)(object)dy, dx, ws);
        }
        Alpha.Accumulate(g.Alpha);
        Gamma.Accumulate(g.Gamma);
        Beta.Accumulate(g.Beta);
        return g.X;
    }
}

using System.Numerics;
using Attention.Reference.Tensors;

namespace Attention.Reference.Layers;

/// <summary>
/// Squeeze-and-Excitation as the reference code builds it, from named children (docs/derivations/se.md):
/// z = mean_{h,w}(x) (Eq. (se.1)), s = excitation(z) where the excitation is the children in registration order
/// (timm's <c>SEModule</c>: <c>fc1</c>, <c>bn</c>, <c>act</c>, <c>fc2</c>, <c>gate</c>; the legacy SENet's:
/// <c>fc1</c>, <c>relu</c>, <c>fc2</c>, <c>sigmoid</c>), and y = x·s broadcast over H×W (Eq. (se.7)).
/// <para>
/// Backward (Eqs. (se.8)–(se.17)): ∂s[n, c] = Σ_{h,w} ∂y·x (h, w ascending), back through the children in reverse
/// to ∂z, then ∂x = ∂y·s + ∂z / (H·W).
/// </para>
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class SqueezeExcite<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    protected internal override bool OutputIsOwnBuffer => true;

    private readonly List<Layer<T>> _excitation = new();
    private readonly Layer<T>? _squeeze;

    /// <summary>Creates the module from its excitation children, in order; the squeeze is the built-in mean.</summary>
    /// <param name="kind">The class name (<c>SEModule</c>).</param>
    /// <param name="excitation">The named children applied to the squeezed [N, C, 1, 1] tensor.</param>
    public SqueezeExcite(string kind, IEnumerable<(string Name, Layer<T> Layer)> excitation)
    {
        Kind = kind;
        foreach (var (name, layer) in excitation) _excitation.Add(Child(name, layer));
    }

    /// <summary>
    /// Creates the module from children registered in <paramref name="children"/>' order and run in
    /// <paramref name="run"/>'s: the first run element is the squeeze (a pooling child, as torchvision's
    /// <c>avgpool</c>), the rest the excitation.
    /// </summary>
    public SqueezeExcite(string kind, IEnumerable<(string Name, Layer<T> Layer)> children, IReadOnlyList<Layer<T>> run)
    {
        Kind = kind;
        foreach (var (name, layer) in children) Child(name, layer);
        _squeeze = run[0];
        _excitation.AddRange(run.Skip(1));
    }

    /// <summary>
    /// torchvision's <c>ops.SqueezeExcitation(input_channels, squeeze_channels, activation, scale_activation)</c>:
    /// children <c>avgpool</c>, <c>fc1</c>, <c>fc2</c>, <c>activation</c>, <c>scale_activation</c> (registered in that
    /// order, run as avgpool → fc1 → activation → fc2 → scale_activation); y = scale · x.
    /// </summary>
    public static SqueezeExcite<T> Torchvision(int channels, int squeeze, Layer<T> activation, Layer<T> scaleActivation)
    {
        var avgpool = new AdaptiveAvgPool2d<T>();
        var fc1 = new Linear<T>(channels, squeeze, true, convForm: true);
        var fc2 = new Linear<T>(squeeze, channels, true, convForm: true);
        return new SqueezeExcite<T>("SqueezeExcitation",
            [("avgpool", avgpool), ("fc1", fc1), ("fc2", fc2), ("activation", activation), ("scale_activation", scaleActivation)],
            [avgpool, fc1, activation, fc2, scaleActivation]);
    }

    /// <summary>
    /// timm's <c>SEModule(channels, rd_ratio=1/16, rd_divisor=8)</c>: hidden width
    /// <c>make_divisible(C/16, 8, round_limit=0)</c>, 1x1 convolutions with bias, Identity norm, ReLU, sigmoid gate.
    /// </summary>
    public static SqueezeExcite<T> Timm(int channels, int? hidden = null)
    {
        int rd = hidden ?? MakeDivisible(channels / 16.0, 8, 0);
        return new SqueezeExcite<T>("SEModule",
        [
            ("fc1", new Linear<T>(channels, rd, true, convForm: true)),
            ("bn", new Identity<T>()),
            ("act", Act.Relu<T>()),
            ("fc2", new Linear<T>(rd, channels, true, convForm: true)),
            ("gate", Act.Sigmoid<T>()),
        ]);
    }

    /// <summary>timm senet.py's <c>SEModule(channels, reduction)</c>: hidden C // reduction, children fc1, relu, fc2, sigmoid.</summary>
    public static SqueezeExcite<T> Legacy(int channels, int reduction)
    {
        int rd = channels / reduction;
        return new SqueezeExcite<T>("SEModule",
        [
            ("fc1", new Linear<T>(channels, rd, true, convForm: true)),
            ("relu", Act.Relu<T>()),
            ("fc2", new Linear<T>(rd, channels, true, convForm: true)),
            ("sigmoid", Act.Sigmoid<T>()),
        ]);
    }

    /// <summary>timm's <c>make_divisible(v, divisor, min_value=None, round_limit)</c> (torchvision's <c>_make_divisible</c>).</summary>
    public static int MakeDivisible(double v, int divisor, double roundLimit = 0.9, int? minValueOrNull = null)
    {
        int minValue = minValueOrNull ?? divisor;
        int newV = Math.Max(minValue, (int)(v + divisor / 2.0) / divisor * divisor);
        if (newV < roundLimit * v) newV += divisor;
        return newV;
    }

    /// <inheritdoc />
    public override string Kind { get; }

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input);
        int[] squeezed = [input[0], input[1], 1, 1];
        var s = _squeeze?.InferShape(input, plan) ?? squeezed;
        foreach (var layer in _excitation) s = layer.InferShape(s, plan);
        if (!s.AsSpan().SequenceEqual(squeezed)) throw new ShapeMismatchException(DisplayName + " gate", ShapeUtil.Format(squeezed), s);
        return input;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        var s = Gate(x, pass);
        int n = x.Dim(0), c = x.Dim(1);
        // Eq. (se.7): y = x · s (in an inference plan, into x when this block owns it).
        var y = Inference && InputOwned && pass.InPlaceAllowed ? x : x.ZerosLike();
        Compute.For(n * c, new Scale { X = x.Data, Y = y.Data, S = s.Data, Plane = x.Dim(2) * x.Dim(3) });
        Save(pass, (x, s));
        return y;
    }

    /// <summary>
    /// Eqs. (se.1)–(se.6): the gate s [N, C, 1, 1] for x, without scaling x (an inference plan's residual block applies
    /// y = act(x·s + shortcut) in one pass, the same operations in the same order).
    /// </summary>
    internal DenseTensor<T> Gate(DenseTensor<T> x, Pass<T> pass)
    {
        if (x.Rank != 4) ShapeUtil.RequireRank(x, DisplayName + " input", 4, "N, C, H, W"); // the name is built only on failure
        int n = x.Dim(0), c = x.Dim(1);
        // Eq. (se.1): z = mean over (h, w), a sequential sum divided once by H·W.
        DenseTensor<T> s;
        if (_squeeze is not null) s = _squeeze.Forward(x, pass);
        else if (Inference && pass.InPlaceAllowed)
        {
            // Inference plan: one squeeze buffer, reused.
            s = PlanBuffer(ref _z, [n, c, 1, 1]);
            Ops.GlobalPool.AvgForward(x, s);
        }
        else s = Ops.GlobalPool.AvgForward(x).Reshape(n, c, 1, 1);
        foreach (var layer in _excitation) s = layer.Forward(s, pass);
        if (!s.HasShape([n, c, 1, 1])) ShapeUtil.Require(s, DisplayName + " gate", n, c, 1, 1);
        pass.OnGate?.Invoke(DisplayName, s.Reshape(n, c));
        return s;
    }

    private DenseTensor<T>? _z;

    /// <summary>Eq. (se.7) for one (n, c) plane: y = x · s.</summary>
    private struct Scale : IForBody
    {
        public T[] X, Y, S;
        public int Plane;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int p)
        {
            Ops.SpanArithmetic.Scale(X.AsSpan(p * Plane, Plane), S[p], Y.AsSpan(p * Plane, Plane));
        }
    }

    /// <inheritdoc />
    protected internal override void FuseForInference()
    {
        base.FuseForInference();
        // The excitation runs on the squeeze's output, which this module owns: every step may work in place.
        FuseRun(_excitation);
        // (FuseRun marked the later steps by their predecessors; the first reads the squeeze's own buffer.)
        if (_excitation.Count > 0) _excitation[0].MarkUse(true);
        MarkInference();
    }

    /// <summary>The squeeze (GlobalAveragePool), the excitation layers, then Mul(x, s).</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var shape = writer.Shape(input);
        string s = _squeeze?.Export(writer, input) ?? writer.Node(this, "GlobalAveragePool", [input], [shape[0], shape[1], 1, 1]);
        foreach (var layer in _excitation) s = layer.Export(writer, s);
        return writer.Node(this, "Mul", [input, s], shape);
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var (x, s) = Restore<(DenseTensor<T>, DenseTensor<T>)>(pass);
        ShapeUtil.Require(dy, DisplayName + " output gradient", x.ShapeArray());
        int n = x.Dim(0), c = x.Dim(1), plane = x.Dim(2) * x.Dim(3);
        T[] xd = x.Data, gd = dy.Data, sd = s.Data;
        // Eq. (se.8): ∂s = Σ_{h,w} ∂y·x.
        var ds = new DenseTensor<T>(n, c, 1, 1);
        Compute.For(n * c, p =>
        {
            T acc = T.Zero;
            for (int i = p * plane; i < (p + 1) * plane; i++) acc += gd[i] * xd[i];
            ds.Data[p] = acc;
        });
        var dz = ds;
        for (int i = _excitation.Count - 1; i >= 0; i--) dz = _excitation[i].Backward(dz, pass);
        // Eq. (se.17): ∂x = ∂y·s + ∂z/(H·W).
        var dx = x.ZerosLike();
        T[] dxd = dx.Data;
        Compute.For(n * c, p =>
        {
            T g = sd[p];
            for (int i = p * plane; i < (p + 1) * plane; i++) dxd[i] = gd[i] * g;
        });
        if (_squeeze is null) Ops.GlobalPool.AvgBackwardAccumulate(dz.Reshape(n, c), dx);
        else
        {
            // The pooling child's adjoint, dz / (H·W) broadcast, added once per element: the same sum as above.
            var dpool = _squeeze.Backward(dz, pass).Data;
            for (int i = 0; i < dxd.Length; i++) dxd[i] += dpool[i];
        }
        return dx;
    }
}

using System.Numerics;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Layers;

/// <summary>
/// An elementwise function and its derivative, as an operator struct (the style of TensorPrimitives): the layer
/// <see cref="Elementwise{T, TOp}"/> runs it. The derivative reads the saved input or the saved output, whichever
/// the formula needs (docs/derivations/pooling-and-activations.md).
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public interface IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The class name PyTorch prints.</summary>
    static abstract string Kind { get; }

    /// <summary>True when the derivative is a function of the output (sigmoid, tanh), false when of the input.</summary>
    static abstract bool GradFromOutput { get; }

    /// <summary>f(v).</summary>
    static abstract T Invoke(T v);

    /// <summary>f'(·) at the saved input or output (see <see cref="GradFromOutput"/>).</summary>
    static abstract T Grad(T saved);

    /// <summary>f'(·) as libtorch evaluates it (the same as <see cref="Grad"/> except where docs/derivations says otherwise).</summary>
    static abstract T GradLibtorch(T saved);
}

/// <summary><c>nn.ReLU</c>: max(v, 0) with NaN propagated; relu'(0) = 0 as PyTorch.</summary>
public readonly struct ReluOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "ReLU";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Relu(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.ReluGrad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Grad(v);
}

/// <summary><c>nn.Sigmoid</c>: 1 / (1 + e^−v); derivative (1 − s)·s from the output s, as PyTorch's sigmoid_backward.</summary>
public readonly struct SigmoidOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "Sigmoid";
    /// <inheritdoc />
    public static bool GradFromOutput => true;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Sigmoid(v);
    /// <inheritdoc />
    public static T Grad(T s) => Activations.SigmoidGradFromOutput(s);
    /// <inheritdoc />
    public static T GradLibtorch(T s) => Grad(s);
}

/// <summary><c>nn.ReLU6</c>: min(max(v, 0), 6); derivative 0 at both boundaries (hardtanh_backward).</summary>
public readonly struct Relu6Op<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "ReLU6";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Relu6(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.Relu6Grad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Grad(v);
}

/// <summary><c>nn.Hardswish</c> (Eqs. (act.11)–(act.12)).</summary>
public readonly struct HardswishOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "Hardswish";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Hardswish(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.HardswishGrad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Grad(v);
}

/// <summary><c>nn.Hardsigmoid</c> (Eqs. (act.13)–(act.14)); the exact 1/6 in the backward.</summary>
public readonly struct HardsigmoidOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "Hardsigmoid";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Hardsigmoid(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.HardsigmoidGrad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Activations.HardsigmoidGradLibtorch(v);
}

/// <summary><c>nn.SiLU</c> (Eqs. (act.15)–(act.16)).</summary>
public readonly struct SiluOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "SiLU";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Silu(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.SiluGrad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Grad(v);
}

/// <summary>
/// timm's functional <c>hard_sigmoid</c>, ReLU6(v + 3) / 6 evaluated literally (Eq. (act.5)), with the derivative
/// ReLU6'(fl(v + 3)) / 6 (Eq. (act.6)): the SE paper module's hard gate. Its value is <c>nn.Hardsigmoid</c>'s; its
/// derivative is taken at the rounded v + 3, as the composite's autograd does.
/// </summary>
public readonly struct HardSigmoidOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "hard_sigmoid";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.HardSigmoid(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.HardSigmoidGrad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Grad(v);
}

/// <summary><c>nn.Tanh</c>; derivative 1 − t² from the output (Eq. (act.9)).</summary>
public readonly struct TanhOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "Tanh";
    /// <inheritdoc />
    public static bool GradFromOutput => true;
    /// <inheritdoc />
    public static T Invoke(T v) => T.Tanh(v);
    /// <inheritdoc />
    public static T Grad(T t) => Activations.TanhGradFromOutput(t);
    /// <inheritdoc />
    public static T GradLibtorch(T t) => Grad(t);
}

/// <summary>
/// Elementwise loops over fixed chunks of 32768 elements, in parallel (<see cref="Compute.For"/>): every element is
/// computed alone, so the chunking changes nothing but the speed.
/// </summary>
internal static class Chunks
{
    /// <summary>A chunk body as a struct (no closure per call).</summary>
    public interface IBody
    {
        /// <summary>Elements [lo, hi).</summary>
        void Invoke(int lo, int hi);
    }

    private struct Loop<TBody> : IForBody where TBody : struct, IBody
    {
        public TBody Body;
        public int Length;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int k)
        {
            var b = Body;
            b.Invoke(k * Size, Math.Min(Length, (k + 1) * Size));
        }
    }

    /// <summary><see cref="For(int, Action{int, int})"/> with a struct body: allocates nothing.</summary>
    public static void For<TBody>(int length, in TBody body) where TBody : struct, IBody
    {
        int chunks = (length + Size - 1) / Size;
        if (chunks <= 1) { var b = body; b.Invoke(0, length); return; }
        Compute.For(chunks, new Loop<TBody> { Body = body, Length = length });
    }

    private const int Size = 1 << 15;

    /// <summary>Runs <paramref name="body"/>(lo, hi) over [0, length) in chunks.</summary>
    public static void For(int length, Action<int, int> body)
    {
        int chunks = (length + Size - 1) / Size;
        if (chunks <= 1) { body(0, length); return; }
        Compute.For(chunks, k => body(k * Size, Math.Min(length, (k + 1) * Size)));
    }
}

/// <summary>An elementwise activation layer: y = f(x), ∂L/∂x = ∂L/∂y · f'(x or y).</summary>
/// <typeparam name="T">float or double.</typeparam>
/// <typeparam name="TOp">The function.</typeparam>
public sealed class Elementwise<T, TOp> : Layer<T>, IInPlaceActivation<T>, IConvEpilogue<T> where T : IFloatingPointIeee754<T> where TOp : struct, IElementwiseOp<T>
{
    /// <inheritdoc />
    protected internal override bool OutputIsOwnBuffer => true;

    /// <inheritdoc />
    public void Apply(Span<T> values)
    {
        if (Ops.VectorActivations.TryApply(TOp.Kind, values)) return;
        for (int i = 0; i < values.Length; i++) values[i] = TOp.Invoke(values[i]);
    }

    /// <inheritdoc />
    public void ApplyInPlace(DenseTensor<T> x)
    {
        ArgumentNullException.ThrowIfNull(x);
        Chunks.For(x.Data.Length, new ApplyChunk { Layer = this, X = x.Data });
    }

    private struct ApplyChunk : Chunks.IBody
    {
        public Elementwise<T, TOp> Layer;
        public T[] X;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int lo, int hi) => Layer.Apply(X.AsSpan(lo, hi - lo));
    }

    /// <inheritdoc />
    public override string Kind => TOp.Kind;

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (Inference && InputOwned && pass.InPlaceAllowed)
        {
            // Inference plan: the input is this layer's alone.
            ApplyInPlace(x);
            return x;
        }
        var y = x.ZerosLike();
        Chunks.For(x.Data.Length, new MapChunk { X = x.Data, Y = y.Data });
        Save(pass, TOp.GradFromOutput ? y : x);
        return y;
    }

    // A struct body, not a lambda: a lambda's captured locals would be allocated on every entry to OnForward, the
    // inference plan's in-place path included.
    private struct MapChunk : Chunks.IBody
    {
        public T[] X, Y;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int lo, int hi)
        {
            T[] xd = X, yd = Y;
            for (int i = lo; i < hi; i++) yd[i] = TOp.Invoke(xd[i]);
        }
    }

    /// <summary>
    /// The operator's own expression: Relu, Sigmoid and Tanh as such; ReLU6 as Clip(0, 6); Hardswish as
    /// x·Clip(x + 3, 0, 6)/6 and Hardsigmoid as Clip(x + 3, 0, 6)/6 (ONNX's HardSwish/HardSigmoid round otherwise,
    /// and HardSigmoid's α is a float32); SiLU as x / (1 + exp(−x)).
    /// </summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var s = writer.Shape(input);
        string Op(string op, params string[] inputs) => writer.Node(this, op, inputs, s);
        string Relu6(string v) => Op("Clip", v, writer.Scalar(0), writer.Scalar(6));
        return TOp.Kind switch
        {
            "ReLU" => Op("Relu", input),
            "Sigmoid" => Op("Sigmoid", input),
            "Tanh" => Op("Tanh", input),
            "ReLU6" => Relu6(input),
            "Hardswish" => Op("Div", Op("Mul", input, Relu6(Op("Add", input, writer.Scalar(3)))), writer.Scalar(6)),
            "Hardsigmoid" or "hard_sigmoid" => Op("Div", Relu6(Op("Add", input, writer.Scalar(3))), writer.Scalar(6)),
            "SiLU" => Op("Div", input, Op("Add", writer.Scalar(1), Op("Exp", Op("Neg", input)))),
            _ => base.OnExport(writer, input),
        };
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var saved = Restore<DenseTensor<T>>(pass);
        ShapeUtil.Require(dy, DisplayName + " output gradient", saved.ShapeArray());
        var dx = dy.ZerosLike();
        T[] sd = saved.Data, gd = dy.Data, dxd = dx.Data;
        bool torch = pass.Conventions == GradConventions.Libtorch;
        Chunks.For(dxd.Length, (lo, hi) =>
        {
            if (torch)
                for (int i = lo; i < hi; i++) dxd[i] = gd[i] * TOp.GradLibtorch(sd[i]);
            else
                for (int i = lo; i < hi; i++) dxd[i] = gd[i] * TOp.Grad(sd[i]);
        });
        return dx;
    }
}

/// <summary><c>nn.Identity</c> (and every Dropout / stochastic depth / DropBlock in a network: their randomness cannot be reproduced, so they are identities here).</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class Identity<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>Creates the layer; <paramref name="kind"/> is the class name to report (Identity, Dropout, ...).</summary>
    public Identity(string kind = "Identity") => Kind = kind;

    /// <inheritdoc />
    public override string Kind { get; }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass) => x;

    /// <summary>Nothing: PyTorch's exporter writes no node for an identity.</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input) => input;

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass) => dy;
}

/// <summary>Factories for the common activation layers.</summary>
public static class Act
{
    /// <summary><c>nn.ReLU</c>.</summary>
    public static Layer<T> Relu<T>() where T : IFloatingPointIeee754<T> => new Elementwise<T, ReluOp<T>>();

    /// <summary><c>nn.Sigmoid</c>.</summary>
    public static Layer<T> Sigmoid<T>() where T : IFloatingPointIeee754<T> => new Elementwise<T, SigmoidOp<T>>();

    /// <summary><c>nn.ReLU6</c>.</summary>
    public static Layer<T> Relu6<T>() where T : IFloatingPointIeee754<T> => new Elementwise<T, Relu6Op<T>>();

    /// <summary><c>nn.Hardswish</c>.</summary>
    public static Layer<T> Hardswish<T>() where T : IFloatingPointIeee754<T> => new Elementwise<T, HardswishOp<T>>();

    /// <summary><c>nn.Hardsigmoid</c>.</summary>
    public static Layer<T> Hardsigmoid<T>() where T : IFloatingPointIeee754<T> => new Elementwise<T, HardsigmoidOp<T>>();

    /// <summary><c>nn.SiLU</c>.</summary>
    public static Layer<T> Silu<T>() where T : IFloatingPointIeee754<T> => new Elementwise<T, SiluOp<T>>();

    /// <summary><c>nn.Tanh</c>.</summary>
    public static Layer<T> Tanh<T>() where T : IFloatingPointIeee754<T> => new Elementwise<T, TanhOp<T>>();

    /// <summary>timm's functional <c>hard_sigmoid</c> (the SE paper module's hard gate).</summary>
    public static Layer<T> HardSigmoidSe<T>() where T : IFloatingPointIeee754<T> => new Elementwise<T, HardSigmoidOp<T>>();
}

/// <summary>
/// A functional identity that records a named intermediate for <c>attention-ref trace</c>: the value passing
/// forward under <c>forward</c> (equation, name) and the gradient passing backward under <c>backward</c>; either may
/// be null. It computes nothing and is never a registered module, so it changes neither the names nor the numbers.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class TraceTap<T>((string Equation, string Name)? forward, (string Equation, string Name)? backward = null) : Layer<T>
    where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public override string Kind => "TraceTap";

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (forward is var (eq, name)) pass.Trace?.Forward(eq, name, x);
        return x;
    }

    /// <summary>Nothing: a trace tap computes nothing.</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input) => input;

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        if (backward is var (eq, name)) pass.Trace?.Backward(eq, name, dy);
        return dy;
    }
}

using Attention.Reference.Ops;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Layers;

/// <summary>An activation layer whose function an inference plan can apply in place or fuse into a convolution.</summary>
/// <typeparam name="T">float or double.</typeparam>
public interface IActivationLayer<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The function as an in-place operator (a convolution epilogue).</summary>
    IConvEpilogue<T> Epilogue { get; }
}

/// <summary>An elementwise activation layer: y = f(x), ∂L/∂x = ∂L/∂y · f'(x or y).</summary>
/// <typeparam name="T">float or double.</typeparam>
/// <typeparam name="TOp">The function.</typeparam>
public sealed class Elementwise<T, TOp> : Layer<T>, IActivationLayer<T> where T : IFloatingPointIeee754<T> where TOp : struct, IElementwiseOp<T>
{
    /// <inheritdoc />
    public IConvEpilogue<T> Epilogue => ActivationEpilogue<T, TOp>.Instance;

    /// <inheritdoc />
    public override string Kind => TOp.Kind;

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (pass.MayOverwriteInput(this))
        {
            // Inference plan: the input is this layer's alone.
            Epilogue.ApplyInPlace(x);
            return x;
        }
        var y = pass.Uninitialized(this, "y", x.Shape);
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

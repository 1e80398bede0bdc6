using System.Numerics;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

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
}

/// <summary>An elementwise activation layer: y = f(x), ∂L/∂x = ∂L/∂y · f'(x or y).</summary>
/// <typeparam name="T">float or double.</typeparam>
/// <typeparam name="TOp">The function.</typeparam>
public sealed class Elementwise<T, TOp> : Layer<T> where T : IFloatingPointIeee754<T> where TOp : struct, IElementwiseOp<T>
{
    /// <inheritdoc />
    public override string Kind => TOp.Kind;

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        var y = x.ZerosLike();
        T[] xd = x.Data, yd = y.Data;
        for (int i = 0; i < xd.Length; i++) yd[i] = TOp.Invoke(xd[i]);
        Save(pass, TOp.GradFromOutput ? y : x);
        return y;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var saved = Restore<DenseTensor<T>>(pass);
        ShapeUtil.Require(dy, DisplayName + " output gradient", saved.ShapeArray());
        var dx = dy.ZerosLike();
        T[] sd = saved.Data, gd = dy.Data, dxd = dx.Data;
        for (int i = 0; i < dxd.Length; i++) dxd[i] = gd[i] * TOp.Grad(sd[i]);
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

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        if (backward is var (eq, name)) pass.Trace?.Backward(eq, name, dy);
        return dy;
    }
}

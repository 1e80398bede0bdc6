namespace Attention.Reference.Kernels;

/// <summary>
/// A SIMD register of <typeparamref name="T"/> (float or double) as an operator struct, in the style of
/// dotnet/runtime's <c>TensorPrimitives</c>: a kernel is written once, generic over the register type, and
/// instantiated for <see cref="Simd512{T}"/>, <see cref="Simd256{T}"/> and <see cref="SimdPortable{T}"/>.
/// Every operation is element-wise and correctly rounded (FusedMultiplyAdd is one rounding on every path, in
/// software where the hardware has no FMA), so a kernel whose elements do not mix lanes gives identical bits on
/// every width.
/// </summary>
/// <typeparam name="TSelf">The implementing struct.</typeparam>
/// <typeparam name="T">The element type.</typeparam>
internal interface ISimd<TSelf, T>
    where TSelf : unmanaged, ISimd<TSelf, T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Elements per register.</summary>
    static abstract int Count { get; }

    /// <summary>
    /// Whether kernels on this width have only 16 vector registers (x64 without AVX-512), so that wide register tiles
    /// run as halves that do not spill (the same FMA chains, the same bits). Vector256 always means it — on AVX-512
    /// hardware forced to Vector256 the AVX2 machine's tiles run, so that path is simulated faithfully.
    /// </summary>
    static abstract bool SixteenRegisters { get; }

    /// <summary>All lanes +0.</summary>
    static abstract TSelf Zero { get; }

    /// <summary>All lanes <paramref name="value"/>.</summary>
    static abstract TSelf Splat(T value);

    /// <summary>Count elements from <paramref name="source"/> + <paramref name="index"/> (unaligned, unchecked).</summary>
    static abstract TSelf Load(ref T source, nuint index);

    /// <summary>Stores the lanes at <paramref name="destination"/> + <paramref name="index"/> (unaligned, unchecked).</summary>
    static abstract void Store(TSelf value, ref T destination, nuint index);

    /// <summary>a·b + c with one rounding per lane.</summary>
    static abstract TSelf FusedMultiplyAdd(TSelf a, TSelf b, TSelf c);

    /// <summary>a·b, rounded.</summary>
    static abstract TSelf Multiply(TSelf a, TSelf b);

    /// <summary>a + b, rounded.</summary>
    static abstract TSelf Add(TSelf a, TSelf b);

    /// <summary>a − b, rounded.</summary>
    static abstract TSelf Subtract(TSelf a, TSelf b);

    /// <summary>|a| per lane.</summary>
    static abstract TSelf Abs(TSelf a);

    /// <summary>sgn(x)·c per lane with sgn(0) = 0 and 0 for NaN (PyTorch's abs backward).</summary>
    static abstract TSelf SignTimes(TSelf x, TSelf c);

    /// <summary>The lanes' sum in the hardware's documented horizontal order for this width.</summary>
    static abstract T Sum(TSelf a);

    /// <summary>a / b, rounded.</summary>
    static abstract TSelf Divide(TSelf a, TSelf b);

    /// <summary>Per lane: v ≤ lo → lo, else v ≥ hi → hi, else v; NaN stays NaN (the scalar activations' clamp).</summary>
    static abstract TSelf Clamp(TSelf v, TSelf lo, TSelf hi);

    /// <summary>Each lane rounded to the nearest integer, ties to even (exact).</summary>
    static abstract TSelf RoundToEven(TSelf a);

    /// <summary>2^n for lanes holding integers n in the normal exponent range (exact; the float bits built directly).</summary>
    static abstract TSelf Pow2(TSelf n);
}

/// <summary><see cref="Vector512{T}"/> as an <see cref="ISimd{TSelf, T}"/>.</summary>
internal readonly struct Simd512<T> : ISimd<Simd512<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Vector512<T> _v;

    private Simd512(Vector512<T> v) => _v = v;

    /// <inheritdoc />
    public static bool SixteenRegisters => false;

    /// <inheritdoc />
    public static int Count => Vector512<T>.Count;

    /// <inheritdoc />
    public static Simd512<T> Zero => default;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Splat(T value) => new(Vector512.Create(value));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Load(ref T source, nuint index) => new(Vector512.LoadUnsafe(ref source, index));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Simd512<T> value, ref T destination, nuint index) => value._v.StoreUnsafe(ref destination, index);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> FusedMultiplyAdd(Simd512<T> a, Simd512<T> b, Simd512<T> c) =>
        typeof(T) == typeof(float)
            ? new(Vector512.FusedMultiplyAdd(a._v.AsSingle(), b._v.AsSingle(), c._v.AsSingle()).As<float, T>())
            : new(Vector512.FusedMultiplyAdd(a._v.AsDouble(), b._v.AsDouble(), c._v.AsDouble()).As<double, T>());

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Multiply(Simd512<T> a, Simd512<T> b) => new(a._v * b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Add(Simd512<T> a, Simd512<T> b) => new(a._v + b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Subtract(Simd512<T> a, Simd512<T> b) => new(a._v - b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Abs(Simd512<T> a) => new(Vector512.Abs(a._v));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> SignTimes(Simd512<T> x, Simd512<T> c) =>
        new(Vector512.ConditionalSelect(Vector512.GreaterThan(x._v, Vector512<T>.Zero), c._v, Vector512<T>.Zero)
            - Vector512.ConditionalSelect(Vector512.LessThan(x._v, Vector512<T>.Zero), c._v, Vector512<T>.Zero));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sum(Simd512<T> a) => Vector512.Sum(a._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Divide(Simd512<T> a, Simd512<T> b) => new(a._v / b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Clamp(Simd512<T> v, Simd512<T> lo, Simd512<T> hi)
    {
        var r = Vector512.ConditionalSelect(Vector512.LessThanOrEqual(v._v, lo._v), lo._v,
            Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(v._v, hi._v), hi._v, v._v));
        return new(Vector512.ConditionalSelect(Vector512.Equals(v._v, v._v), r, v._v));
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> RoundToEven(Simd512<T> a) => typeof(T) == typeof(float)
        ? new(Vector512.Round(a._v.AsSingle()).As<float, T>())
        : new(Vector512.Round(a._v.AsDouble()).As<double, T>());

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Pow2(Simd512<T> n) => typeof(T) == typeof(float)
        ? new(Vector512.ShiftLeft(Vector512.ConvertToInt32(n._v.AsSingle()) + Vector512.Create(127), 23).AsSingle().As<float, T>())
        : new(Vector512.ShiftLeft(Vector512.ConvertToInt64(n._v.AsDouble()) + Vector512.Create(1023L), 52).AsDouble().As<double, T>());
}

/// <summary><see cref="Vector256{T}"/> as an <see cref="ISimd{TSelf, T}"/>.</summary>
internal readonly struct Simd256<T> : ISimd<Simd256<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Vector256<T> _v;

    private Simd256(Vector256<T> v) => _v = v;

    /// <inheritdoc />
    public static bool SixteenRegisters => true;

    /// <inheritdoc />
    public static int Count => Vector256<T>.Count;

    /// <inheritdoc />
    public static Simd256<T> Zero => default;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Splat(T value) => new(Vector256.Create(value));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Load(ref T source, nuint index) => new(Vector256.LoadUnsafe(ref source, index));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Simd256<T> value, ref T destination, nuint index) => value._v.StoreUnsafe(ref destination, index);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> FusedMultiplyAdd(Simd256<T> a, Simd256<T> b, Simd256<T> c) =>
        typeof(T) == typeof(float)
            ? new(Vector256.FusedMultiplyAdd(a._v.AsSingle(), b._v.AsSingle(), c._v.AsSingle()).As<float, T>())
            : new(Vector256.FusedMultiplyAdd(a._v.AsDouble(), b._v.AsDouble(), c._v.AsDouble()).As<double, T>());

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Multiply(Simd256<T> a, Simd256<T> b) => new(a._v * b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Add(Simd256<T> a, Simd256<T> b) => new(a._v + b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Subtract(Simd256<T> a, Simd256<T> b) => new(a._v - b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Abs(Simd256<T> a) => new(Vector256.Abs(a._v));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> SignTimes(Simd256<T> x, Simd256<T> c) =>
        new(Vector256.ConditionalSelect(Vector256.GreaterThan(x._v, Vector256<T>.Zero), c._v, Vector256<T>.Zero)
            - Vector256.ConditionalSelect(Vector256.LessThan(x._v, Vector256<T>.Zero), c._v, Vector256<T>.Zero));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sum(Simd256<T> a) => Vector256.Sum(a._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Divide(Simd256<T> a, Simd256<T> b) => new(a._v / b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Clamp(Simd256<T> v, Simd256<T> lo, Simd256<T> hi)
    {
        var r = Vector256.ConditionalSelect(Vector256.LessThanOrEqual(v._v, lo._v), lo._v,
            Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(v._v, hi._v), hi._v, v._v));
        return new(Vector256.ConditionalSelect(Vector256.Equals(v._v, v._v), r, v._v));
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> RoundToEven(Simd256<T> a) => typeof(T) == typeof(float)
        ? new(Vector256.Round(a._v.AsSingle()).As<float, T>())
        : new(Vector256.Round(a._v.AsDouble()).As<double, T>());

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Pow2(Simd256<T> n) => typeof(T) == typeof(float)
        ? new(Vector256.ShiftLeft(Vector256.ConvertToInt32(n._v.AsSingle()) + Vector256.Create(127), 23).AsSingle().As<float, T>())
        : new(Vector256.ShiftLeft(Vector256.ConvertToInt64(n._v.AsDouble()) + Vector256.Create(1023L), 52).AsDouble().As<double, T>());
}

/// <summary>The portable <see cref="Vector{T}"/> (ARM64 NEON, or software) as an <see cref="ISimd{TSelf, T}"/>.</summary>
internal readonly struct SimdPortable<T> : ISimd<SimdPortable<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Vector<T> _v;

    private SimdPortable(Vector<T> v) => _v = v;

    /// <inheritdoc />
    public static bool SixteenRegisters { get; } = System.Runtime.Intrinsics.X86.X86Base.IsSupported && !System.Runtime.Intrinsics.X86.Avx512F.IsSupported;

    /// <inheritdoc />
    public static int Count => Vector<T>.Count;

    /// <inheritdoc />
    public static SimdPortable<T> Zero => default;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> Splat(T value) => new(new Vector<T>(value));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> Load(ref T source, nuint index) => new(Vector.LoadUnsafe(ref source, index));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(SimdPortable<T> value, ref T destination, nuint index) => value._v.StoreUnsafe(ref destination, index);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> FusedMultiplyAdd(SimdPortable<T> a, SimdPortable<T> b, SimdPortable<T> c) =>
        typeof(T) == typeof(float)
            ? new(Vector.As<float, T>(Vector.FusedMultiplyAdd(
                Vector.AsVectorSingle(a._v), Vector.AsVectorSingle(b._v), Vector.AsVectorSingle(c._v))))
            : new(Vector.As<double, T>(Vector.FusedMultiplyAdd(
                Vector.AsVectorDouble(a._v), Vector.AsVectorDouble(b._v), Vector.AsVectorDouble(c._v))));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> Multiply(SimdPortable<T> a, SimdPortable<T> b) => new(a._v * b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> Add(SimdPortable<T> a, SimdPortable<T> b) => new(a._v + b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> Subtract(SimdPortable<T> a, SimdPortable<T> b) => new(a._v - b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> Abs(SimdPortable<T> a) => new(Vector.Abs(a._v));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> SignTimes(SimdPortable<T> x, SimdPortable<T> c) =>
        new(Vector.ConditionalSelect(Vector.GreaterThan(x._v, Vector<T>.Zero), c._v, Vector<T>.Zero)
            - Vector.ConditionalSelect(Vector.LessThan(x._v, Vector<T>.Zero), c._v, Vector<T>.Zero));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sum(SimdPortable<T> a) => Vector.Sum(a._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> Divide(SimdPortable<T> a, SimdPortable<T> b) => new(a._v / b._v);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> Clamp(SimdPortable<T> v, SimdPortable<T> lo, SimdPortable<T> hi)
    {
        var r = Vector.ConditionalSelect(Vector.LessThanOrEqual(v._v, lo._v), lo._v,
            Vector.ConditionalSelect(Vector.GreaterThanOrEqual(v._v, hi._v), hi._v, v._v));
        return new(Vector.ConditionalSelect(Vector.Equals(v._v, v._v), r, v._v));
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> RoundToEven(SimdPortable<T> a) => typeof(T) == typeof(float)
        ? new(Vector.As<float, T>(Vector.Round(Vector.AsVectorSingle(a._v))))
        : new(Vector.As<double, T>(Vector.Round(Vector.AsVectorDouble(a._v))));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SimdPortable<T> Pow2(SimdPortable<T> n) => typeof(T) == typeof(float)
        ? new(Vector.As<float, T>(Vector.AsVectorSingle(Vector.ShiftLeft(Vector.ConvertToInt32(Vector.AsVectorSingle(n._v)) + new Vector<int>(127), 23))))
        : new(Vector.As<double, T>(Vector.AsVectorDouble(Vector.ShiftLeft(Vector.ConvertToInt64(Vector.AsVectorDouble(n._v)) + new Vector<long>(1023L), 52))));
}

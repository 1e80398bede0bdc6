using System.Buffers.Binary;
using System.IO.Compression;

namespace Attention.Reference.IO;

/// <summary>
/// Reads the state_dicts that <c>torch.save(model.state_dict(), path)</c> writes in PyTorch's zip format (PyTorch 1.6
/// and later), without Python and without running any code from the file. The archive holds
/// <c>&lt;folder&gt;/data.pkl</c>, a pickle of the dict whose tensors point at raw little-endian storages
/// <c>&lt;folder&gt;/data/&lt;key&gt;</c>. The pickle is read by a restricted unpickler that accepts only what
/// <c>torch.load(weights_only=True)</c> accepts for a state_dict (OrderedDict, the tensor and parameter rebuild functions,
/// the storage types, dtypes and torch.Size) and refuses every other global by name, so a hostile file cannot make it do
/// anything but fail. Tensors may be views of their storages (offsets and arbitrary strides, shared storages); they are
/// gathered into C order and widened to double.
/// </summary>
/// <remarks>
/// Supported element types: float16, bfloat16, float32, float64, int64, int32, int16, int8, uint8 and bool. Refused, each
/// with a message naming the fault: the legacy pre-1.6 format, big-endian archives, other pickled objects (a whole
/// nn.Module, a checkpoint dict holding non-tensors, sparse or quantized tensors), and any inconsistency of sizes, which
/// is checked in 64-bit arithmetic against the bytes actually present before anything is allocated.
/// </remarks>
public static class Pth
{
    /// <summary>
    /// How many values the tensors may expand to, beyond the elements their storages hold: overlapping strides (expand())
    /// and tensors sharing a storage make the output larger than the file, and this bounds it. The tensors together may
    /// hold at most <c>OutputFactor</c> × (elements in the referenced storages) + <see cref="OutputSlack"/> values.
    /// </summary>
    private const long OutputFactor = 4;

    /// <summary>The allowance added to the output bound (a megavalue: 8 MB of doubles).</summary>
    private const long OutputSlack = 1 << 20;

    /// <summary>Reads every tensor of the state_dict saved in <paramref name="path"/>, in the pickle's order.</summary>
    /// <param name="path">A <c>.pth</c> or <c>.pt</c> file written by <c>torch.save(model.state_dict(), path)</c>.</param>
    /// <returns>The tensors, named by their state_dict keys, with their stored dtypes and shapes.</returns>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is malformed, not a state_dict, or holds a forbidden global; the
    /// message starts with <paramref name="path"/> and says what is wrong.</exception>
    public static List<StoredTensor> Read(string path)
    {
        using var stream = InputFile.OpenRead(path, long.MaxValue, ".pth file");
        return Parse(stream, path);
    }

    /// <summary>Reads every tensor of a state_dict from the bytes of a <c>.pth</c> file, in the pickle's order.</summary>
    /// <param name="bytes">The whole file.</param>
    /// <param name="source">The name that starts every error message (the file name, usually).</param>
    /// <returns>The tensors, named by their state_dict keys, with their stored dtypes and shapes.</returns>
    /// <exception cref="InvalidDataException">The bytes are malformed, not a state_dict, or hold a forbidden global; the
    /// message starts with <paramref name="source"/> and says what is wrong.</exception>
    public static List<StoredTensor> Parse(byte[] bytes, string source)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var stream = new MemoryStream(bytes, writable: false);
        return Parse(stream, source);
    }

    private static List<StoredTensor> Parse(Stream stream, string source)
    {
        using var archive = Archive.Open(stream, source);
        if (archive.TryRead("byteorder") is { } order)
        {
            string text = System.Text.Encoding.ASCII.GetString(order).Trim();
            if (text == "big")
                throw Bad(source, "the archive was written on a big-endian machine; only little-endian storages are supported");
            if (text != "little") throw Bad(source, $"'{archive.Prefix}/byteorder' says '{Shorten(text)}', expected 'little'");
        }
        byte[] pickle = archive.TryRead("data.pkl")
            ?? throw Bad(source, $"no '{archive.Prefix}/data.pkl' in the archive (not a file written by torch.save)");

        var storages = new Dictionary<string, PthStorage>(StringComparer.Ordinal);
        PthStorage LoadStorage(string key, StoredDType dtype, long numel)
        {
            if (storages.TryGetValue(key, out var known))
            {
                if (known.DType != dtype)
                    throw Bad(source, $"storage '{known.Entry}' is used both as {known.DType} and as {dtype}");
                if (numel != known.Data.Length / StoredTensor.SizeOf(dtype))
                    throw Bad(source, $"storage '{known.Entry}' is declared with {numel} elements here and " +
                        $"{known.Data.Length / StoredTensor.SizeOf(dtype)} before");
                return known;
            }
            string entry = $"{archive.Prefix}/data/{key}";
            int size = StoredTensor.SizeOf(dtype);
            // The pickle says how many bytes the storage holds: an entry whose directory declares another size is refused
            // before anything is decompressed (a bomb declaring a gigabyte for a few elements never inflates).
            if (archive.DeclaredLength($"data/{key}") is { } declared && (numel < 0 || numel > Array.MaxLength / size || declared != numel * size))
                throw Bad(source, $"storage '{entry}' declares {declared} bytes in the zip directory, but the pickle declares " +
                    $"{numel} elements of {dtype}");
            byte[] data = archive.TryRead($"data/{key}") ?? throw Bad(source, $"storage '{entry}' is missing from the archive");
            if (numel < 0 || numel > data.Length / size || numel * size != data.Length)
                throw Bad(source, $"storage '{entry}' is {data.Length} bytes, but the pickle declares {numel} elements of " +
                    $"{dtype}");
            var storage = new PthStorage(entry, dtype, data);
            storages.Add(key, storage);
            return storage;
        }

        object root = new PthUnpickler(pickle, source, LoadStorage).Load();
        if (root is not PyDict dict)
            throw Bad(source, $"the pickle holds {PthUnpickler.Describe(root)}, not a state_dict (a dict of str → tensor)");

        long budget = OutputSlack + OutputFactor * storages.Values.Sum(s => (long)s.Data.Length / StoredTensor.SizeOf(s.DType));
        var result = new List<StoredTensor>(dict.Count);
        foreach (var (name, value) in dict.Items)
        {
            if (value is not PthTensor tensor)
            {
                string hint = value is PyDict ? " (a checkpoint? save model.state_dict() itself)" : "";
                throw Bad(source, $"the value of '{Shorten(name)}' is {PthUnpickler.Describe(value)}, not a tensor{hint}");
            }
            result.Add(Materialize(tensor, name, source, ref budget));
        }
        return result;
    }

    /// <summary>Checks a tensor's view against its storage and gathers its elements into C order.</summary>
    private static StoredTensor Materialize(PthTensor t, string name, string source, ref long budget)
    {
        var storage = t.Storage;
        string shown = Shorten(name);
        int rank = t.Size.Length;
        if (t.Stride.Length != rank)
            throw Bad(source, $"tensor '{shown}' has {rank} sizes but {t.Stride.Length} strides");
        if (t.Offset < 0) throw Bad(source, $"tensor '{shown}' has a negative storage offset {t.Offset}");
        var shape = new int[rank];
        long numel = 1;
        for (int d = 0; d < rank; d++)
        {
            if (t.Size[d] < 0 || t.Size[d] > int.MaxValue)
                throw Bad(source, $"tensor '{shown}' has size {t.Size[d]} in dimension {d}");
            if (t.Stride[d] < 0) throw Bad(source, $"tensor '{shown}' has a negative stride {t.Stride[d]} in dimension {d}");
            shape[d] = (int)t.Size[d];
            numel = numel > Array.MaxLength / Math.Max(t.Size[d], 1) ? long.MaxValue : numel * t.Size[d];
        }
        if (numel > Array.MaxLength)
            throw Bad(source, $"tensor '{shown}' of shape {Shorten(ShapeUtil.Format(shape))} is too large");

        // The highest element the view touches: offset + Σ (size − 1)·stride, in checked 64-bit arithmetic.
        int elementSize = StoredTensor.SizeOf(storage.DType);
        if (numel > 0)
        {
            long needed;
            try
            {
                long last = t.Offset;
                for (int d = 0; d < rank; d++) last = checked(last + (t.Size[d] - 1) * t.Stride[d]);
                needed = checked((last + 1) * elementSize);
            }
            catch (OverflowException) { throw Bad(source, $"tensor '{shown}': its offset, sizes and strides overflow 64 bits"); }
            if (needed > storage.Data.Length)
                throw Bad(source, $"storage '{storage.Entry}' is {storage.Data.Length} bytes, tensor '{shown}' needs {needed}");
        }
        budget -= numel;
        if (budget < 0)
            throw Bad(source, $"the tensors expand to more than {OutputFactor}× the elements their storages hold " +
                $"(tensor '{shown}'): overlapping strides or heavily shared storages are refused");

        var values = new double[numel];
        if (numel > 0) Gather(storage, t, values);
        return new StoredTensor(name, storage.DType, shape, values);
    }

    /// <summary>Walks the view's multi-index in C order (an odometer), moving the storage position by the strides.</summary>
    private static void Gather(PthStorage storage, PthTensor t, double[] values)
    {
        int rank = t.Size.Length;
        var index = new long[rank];
        long position = t.Offset;
        ReadOnlySpan<byte> data = storage.Data;
        var dtype = storage.DType;
        for (long i = 0; i < values.Length; i++)
        {
            values[i] = Element(data, position, dtype);
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++index[d] < t.Size[d]) { position += t.Stride[d]; break; }
                position -= (t.Size[d] - 1) * t.Stride[d];
                index[d] = 0;
            }
        }
    }

    /// <summary>The element at <paramref name="index"/> of a little-endian storage, widened to double.</summary>
    private static double Element(ReadOnlySpan<byte> data, long index, StoredDType dtype) => dtype switch
    {
        StoredDType.F16 => (double)BinaryPrimitives.ReadHalfLittleEndian(data[(int)(2 * index)..]),
        StoredDType.BF16 => BFloat16(data, index),
        StoredDType.F32 => BinaryPrimitives.ReadSingleLittleEndian(data[(int)(4 * index)..]),
        StoredDType.F64 => BinaryPrimitives.ReadDoubleLittleEndian(data[(int)(8 * index)..]),
        StoredDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(data[(int)(8 * index)..]),
        StoredDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(data[(int)(4 * index)..]),
        StoredDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(data[(int)(2 * index)..]),
        StoredDType.I8 => (sbyte)data[(int)index],
        StoredDType.U8 => data[(int)index],
        StoredDType.BOOL => data[(int)index] != 0 ? 1 : 0,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown stored type."),
    };

    /// <summary>This reader's error: the message starts with the source.</summary>
    /// <summary>bfloat16 is the high half of a float32.</summary>
    private static float BFloat16(ReadOnlySpan<byte> data, long index) =>
        BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(data[(int)(2 * index)..]) << 16);

    internal static InvalidDataException Bad(string source, string what)
    {
        var e = new InvalidDataException($"{source}: {what}");
        e.Data[OwnMessage] = true;
        return e;
    }

    /// <summary>Text from the file, cut short for an error message.</summary>
    internal static string Shorten(string text) => text.Length <= 60 ? text : text[..60] + "…";

    /// <summary>The zip archive: entries are looked up under the folder of the first entry, as PyTorch does.</summary>
    private sealed class Archive : IDisposable
    {
        private readonly ZipArchive _zip;
        private readonly string _source;

        private Archive(ZipArchive zip, string prefix, string source) { _zip = zip; Prefix = prefix; _source = source; }

        /// <summary>The archive's folder ('archive' in newer PyTorch, the file's stem in older).</summary>
        public string Prefix { get; }

        public static Archive Open(Stream stream, string source)
        {
            Span<byte> head = stackalloc byte[4];
            int got = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            stream.Position = 0;
            // The legacy format (PyTorch < 1.6, or _use_new_zipfile_serialization=False) starts with a pickled magic number.
            if (got >= 4 && head[0] == 0x80 && head[1] == 0x02 && head[2] == 0x8A && head[3] == 0x0A)
                throw Bad(source, "legacy (pre-1.6) torch.save format; re-save it with a current PyTorch (zip format)");
            if (got < 4 || head[0] != (byte)'P' || head[1] != (byte)'K')
                throw Bad(source, "not a zip file (truncated or not a PyTorch file)");

            ZipArchive? zip = null;
            try
            {
                zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
                var entries = zip.Entries;
                if (entries.Count == 0) throw Bad(source, "the zip archive is empty (not a PyTorch file)");
                string first = entries[0].FullName;
                int slash = first.IndexOf('/');
                if (slash <= 0) throw Bad(source, $"zip entry '{Shorten(first)}' is not in a folder (not a PyTorch file)");
                if (slash > 255) throw Bad(source, $"zip folder '{Shorten(first)}' has an over-long name (not a PyTorch file)");
                var archive = new Archive(zip, first[..slash], source);
                zip = null;
                return archive;
            }
            catch (Exception e) when (IsZipFailure(e))
            {
                throw Bad(source, $"not a zip file (truncated or not a PyTorch file): {e.Message}");
            }
            finally { zip?.Dispose(); }
        }

        /// <summary>The uncompressed size the zip directory declares for <c>&lt;prefix&gt;/<paramref name="name"/></c>, or null when there is no such entry.</summary>
        public long? DeclaredLength(string name)
        {
            try
            {
                return _zip.GetEntry($"{Prefix}/{name}")?.Length;
            }
            catch (Exception e) when (IsZipFailure(e))
            {
                throw Bad(_source, $"cannot read zip entry '{Prefix}/{name}' (corrupt archive): {e.Message}");
            }
        }

        /// <summary>The bytes of <c>&lt;prefix&gt;/<paramref name="name"/></c>, or null when there is no such entry.</summary>
        public byte[]? TryRead(string name)
        {
            string full = $"{Prefix}/{name}";
            try
            {
                var entry = _zip.GetEntry(full);
                if (entry is null) return null;
                long declared = entry.Length;
                if (declared < 0 || declared > Array.MaxLength)
                    throw Bad(_source, $"zip entry '{full}' declares {declared} bytes, more than an array can hold");
                // Read in steps rather than trusting the declared length with one allocation: a corrupt or hostile
                // directory can claim any size, and the bytes that really come out of the entry are what counts.
                using var input = entry.Open();
                // The buffer grows with what really comes out (at most twice that), never with what the directory claims.
                using var output = new MemoryStream((int)Math.Min(declared, 1 << 16));
                var chunk = new byte[16384];
                int n;
                while ((n = input.Read(chunk, 0, chunk.Length)) > 0)
                {
                    if (output.Length + n > declared)
                        throw Bad(_source, $"zip entry '{full}' holds more than the {declared} bytes it declares");
                    output.Write(chunk, 0, n);
                }
                if (output.Length != declared)
                    throw Bad(_source, $"zip entry '{full}' holds {output.Length} bytes but declares {declared} (truncated?)");
                return output.Length == output.Capacity ? output.GetBuffer() : output.ToArray();
            }
            catch (Exception e) when (IsZipFailure(e))
            {
                throw Bad(_source, $"cannot read zip entry '{full}' (corrupt archive): {e.Message}");
            }
        }

        /// <summary>What System.IO.Compression throws for damaged archives; not the reader's own messages.</summary>
        private static bool IsZipFailure(Exception e) =>
            e is (InvalidDataException or IOException or NotSupportedException or ArgumentException
                or InvalidOperationException or OverflowException or IndexOutOfRangeException)
            && !(e is InvalidDataException && e.Data.Contains(OwnMessage));

        public void Dispose() => _zip.Dispose();
    }

    /// <summary>Marks this reader's own exceptions, so the zip wrappers pass them through unchanged.</summary>
    private const string OwnMessage = "Attention.Reference.IO.Pth";
}

/// <summary>A storage of the archive: its entry name, element type and raw little-endian bytes.</summary>
internal sealed record PthStorage(string Entry, StoredDType DType, byte[] Data);

/// <summary>A tensor as <c>_rebuild_tensor_v2</c> describes it: a view of a storage, checked when it is materialized.</summary>
internal sealed record PthTensor(PthStorage Storage, long Offset, long[] Size, long[] Stride);

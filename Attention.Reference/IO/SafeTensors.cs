using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Attention.Reference.IO;

/// <summary>
/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of JSON, then
/// the byte buffer. Reads F64, F32, and F16/BF16 (widened exactly); writes F64 and F32. Validation follows the
/// reference reader: header size cap, header starts with '{', well-formed JSON, known dtypes, offsets inside the buffer
/// with no overlaps or gaps and covering it whole, and shape × dtype size = byte length.
/// </summary>
public static class SafeTensors
{
    /// <summary>The reference reader's cap on the JSON header, 100 MB.</summary>
    public const long MaxHeaderSize = 100_000_000;

    /// <summary>Reads every tensor of a file, in order of their data offsets.</summary>
    /// <exception cref="InvalidDataException">The file is malformed; the message says how.</exception>
    public static List<StoredTensor> Read(string path) => Read(path, out _);

    /// <summary>Reads a file into a tensor set of <typeparamref name="T"/>.</summary>
    public static TensorSet<T> ReadSet<T>(string path) where T : IFloatingPointIeee754<T> =>
        Read(path).ToTensorSet<T>(Path.GetFileName(path));

    /// <summary>Parses the bytes of a safetensors file.</summary>
    /// <exception cref="InvalidDataException">The bytes are malformed; the message names <paramref name="source"/> and the fault.</exception>
    public static List<StoredTensor> Parse(ReadOnlySpan<byte> bytes, string source = "safetensors") =>
        Parse(bytes, source, out _);

    /// <summary>Reads every tensor of a file and its <c>__metadata__</c> (empty when absent).</summary>
    public static List<StoredTensor> Read(string path, out Dictionary<string, string> metadata)
    {
        return Parse(InputFile.ReadAllBytes(path, InputFile.TensorLimit, "safetensors file"), path, out metadata);
    }

    /// <summary>Parses the bytes of a safetensors file and its <c>__metadata__</c>.</summary>
    public static List<StoredTensor> Parse(ReadOnlySpan<byte> bytes, string source, out Dictionary<string, string> metadata)
    {
        metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (bytes.Length < 8) throw Bad(source, $"file is {bytes.Length} bytes, too short for the 8-byte header length");
        ulong headerSize = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerSize > MaxHeaderSize) throw Bad(source, $"header length {headerSize} exceeds the {MaxHeaderSize}-byte limit");
        if ((ulong)bytes.Length - 8 < headerSize)
            throw Bad(source, $"header length {headerSize} runs past the end of the file ({bytes.Length} bytes)");
        var header = bytes.Slice(8, (int)headerSize);
        if (header.Length == 0 || header[0] != (byte)'{') throw Bad(source, "header does not start with '{'");
        var buffer = bytes[(8 + (int)headerSize)..];
        // The reference reader decodes the header as UTF-8 before parsing it, so a stray byte anywhere, in a name or
        // a __metadata__ value alike, refuses the file. System.Text.Json would only notice when a string is read.
        if (!Utf8.IsValid(header)) throw Bad(source, $"header is not valid UTF-8 (at byte {InvalidUtf8Offset(header)})");

        JsonDocument doc;
        try { doc = JsonDocument.Parse(header.ToArray()); }
        catch (JsonException e) { throw Bad(source, $"header is not valid JSON ({e.Message})"); }
        using var _ = doc;
        RefuseLoneSurrogates(header, source);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(source, "header is not a JSON object");

        var entries = new List<(string Name, StoredDType DType, int[] Shape, long Begin, long End)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (!names.Add(prop.Name)) throw Bad(source, $"tensor '{prop.Name}' appears twice in the header");
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad(source, "__metadata__ must be an object of strings");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String)
                        throw Bad(source, $"__metadata__ value '{m.Name}' is not a string");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            entries.Add(ParseEntry(prop, source));
        }

        // Offsets: sorted by begin, each starting where the previous ended, the last ending at the buffer's end.
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long expectedBegin = 0;
        var result = new List<StoredTensor>(entries.Count);
        foreach (var e in entries)
        {
            if (e.Begin != expectedBegin)
                throw Bad(source, e.Begin < expectedBegin
                    ? $"tensor '{e.Name}' overlaps the previous tensor (offset {e.Begin} < {expectedBegin})"
                    : $"gap before tensor '{e.Name}' (offset {e.Begin}, previous tensor ended at {expectedBegin})");
            if (e.End > buffer.Length)
                throw Bad(source, $"tensor '{e.Name}' ends at offset {e.End}, beyond the {buffer.Length}-byte data buffer");
            // Checked: a product that wraps (2^30 · 2^30 · 2 elements of 8 bytes is 2^64, i.e. 0) would otherwise match
            // small or empty offsets. A zero dimension makes the tensor empty whatever the order of the others (the
            // reference reader, folding left to right, would refuse [2^31, 2^31, 2^31, 0] but accept [0, 2^31, ...]).
            long volume = 1;
            if (e.Shape.Contains(0)) volume = 0;
            else
                foreach (int d in e.Shape)
                    if (!StoredTensors.TryMultiply(volume, d, out volume))
                        throw SizeOverflow(source, e.Name, e.Shape, e.DType);
            if (!StoredTensors.TryMultiply(volume, StoredTensor.SizeOf(e.DType), out long needed))
                throw SizeOverflow(source, e.Name, e.Shape, e.DType);
            if (e.End - e.Begin != needed)
                throw Bad(source, $"tensor '{e.Name}' has shape {ShapeUtil.Format(e.Shape)} of {e.DType} ({needed} bytes) but offsets [{e.Begin}, {e.End}] hold {e.End - e.Begin} bytes");
            result.Add(new StoredTensor(e.Name, e.DType, e.Shape, Decode(buffer[(int)e.Begin..(int)e.End], e.DType, (int)volume)));
            expectedBegin = e.End;
        }
        if (expectedBegin != buffer.Length)
            throw Bad(source, $"data buffer is {buffer.Length} bytes but the tensors cover {expectedBegin}");
        return result;
    }

    /// <summary>The offset of the first byte of <paramref name="text"/> that does not start a valid UTF-8 sequence.</summary>
    private static int InvalidUtf8Offset(ReadOnlySpan<byte> text)
    {
        int at = 0;
        while (at < text.Length && Rune.DecodeFromUtf8(text[at..], out _, out int n) == OperationStatus.Done) at += n;
        return at;
    }

    /// <summary>
    /// Refuses an escape that decodes to an unpaired UTF-16 surrogate (<c>"\ud800"</c>), as serde_json does: such a
    /// string has no UTF-8 form, and System.Text.Json throws InvalidOperationException when it is read. One pass over
    /// the (already well-formed) header, decoding only the strings that contain escapes.
    /// </summary>
    private static void RefuseLoneSurrogates(ReadOnlySpan<byte> header, string source)
    {
        var reader = new Utf8JsonReader(header);
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.PropertyName or JsonTokenType.String) || !reader.ValueIsEscaped) continue;
            try { reader.GetString(); }
            catch (InvalidOperationException)
            {
                throw Bad(source, $"header contains an invalid escape at byte {reader.TokenStartIndex}: "
                    + "a \\u escape of an unpaired UTF-16 surrogate, which has no UTF-8 form");
            }
        }
    }

    private static (string, StoredDType, int[], long, long) ParseEntry(JsonProperty prop, string source)
    {
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw Bad(source, $"entry '{prop.Name}' is not an object");
        StoredDType? dtype = null;
        int[]? shape = null;
        long[]? offsets = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var field in v.EnumerateObject())
        {
            // JSON allows a repeated key and System.Text.Json keeps both; the reference reader's serde refuses it.
            if (!seen.Add(field.Name)) throw Bad(source, $"tensor '{prop.Name}' has field '{field.Name}' twice");
            switch (field.Name)
            {
                case "dtype":
                    string s = field.Value.ValueKind == JsonValueKind.String ? field.Value.GetString()! : "";
                    dtype = s switch
                    {
                        "F64" => StoredDType.F64,
                        "F32" => StoredDType.F32,
                        "F16" => StoredDType.F16,
                        "BF16" => StoredDType.BF16,
                        "I64" => StoredDType.I64,
                        "I32" => StoredDType.I32,
                        "I16" => StoredDType.I16,
                        "I8" => StoredDType.I8,
                        "U8" => StoredDType.U8,
                        "BOOL" => StoredDType.BOOL,
                        _ => throw Bad(source, $"tensor '{prop.Name}' has dtype {field.Value.GetRawText()}; supported: F64, F32, F16, BF16 (and, read as integers, I64, I32, I16, I8, U8, BOOL)"),
                    };
                    break;
                case "shape":
                    shape = ReadInts(field.Value, source, prop.Name, "shape").Select(x => x > int.MaxValue
                        ? throw Bad(source, $"tensor '{prop.Name}' has a dimension of {x}, too large") : (int)x).ToArray();
                    break;
                case "data_offsets":
                    offsets = ReadInts(field.Value, source, prop.Name, "data_offsets");
                    if (offsets.Length != 2) throw Bad(source, $"tensor '{prop.Name}' needs data_offsets [begin, end]");
                    if (offsets[1] < offsets[0]) throw Bad(source, $"tensor '{prop.Name}' has data_offsets end {offsets[1]} before begin {offsets[0]}");
                    break;
                default:
                    throw Bad(source, $"tensor '{prop.Name}' has an unknown field '{field.Name}'");
            }
        }
        if (dtype is null || shape is null || offsets is null)
            throw Bad(source, $"tensor '{prop.Name}' needs dtype, shape and data_offsets");
        return (prop.Name, dtype.Value, shape, offsets[0], offsets[1]);
    }

    private static long[] ReadInts(JsonElement e, string source, string name, string what)
    {
        if (e.ValueKind != JsonValueKind.Array) throw Bad(source, $"tensor '{name}': {what} must be an array of non-negative integers");
        var list = new List<long>();
        foreach (var item in e.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long x) || x < 0)
                throw Bad(source, $"tensor '{name}': {what} must be an array of non-negative integers, got {e.GetRawText()}");
            list.Add(x);
        }
        return list.ToArray();
    }

    private static double[] Decode(ReadOnlySpan<byte> data, StoredDType dtype, int count)
    {
        var values = new double[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = dtype switch
            {
                StoredDType.F64 => BinaryPrimitives.ReadDoubleLittleEndian(data[(8 * i)..]),
                StoredDType.F32 => BinaryPrimitives.ReadSingleLittleEndian(data[(4 * i)..]),
                StoredDType.F16 => (double)BinaryPrimitives.ReadHalfLittleEndian(data[(2 * i)..]),
                StoredDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(data[(8 * i)..]),
                StoredDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(data[(4 * i)..]),
                StoredDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(data[(2 * i)..]),
                StoredDType.I8 => (sbyte)data[i],
                StoredDType.U8 => data[i],
                StoredDType.BOOL => data[i] == 0 ? 0 : 1,
                _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(data[(2 * i)..]) << 16),
            };
        }
        return values;
    }

    /// <summary>Writes a tensor set (F32 for float, F64 for double) atomically: temporary file, then rename.</summary>
    public static void Write<T>(string path, TensorSet<T> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        where T : IFloatingPointIeee754<T> =>
        AtomicFile.Write(path, s => s.Write(Serialize(tensors, metadata)));

    /// <summary>The bytes of a safetensors file holding <paramref name="tensors"/> in their order.</summary>
    public static byte[] Serialize<T>(TensorSet<T> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        where T : IFloatingPointIeee754<T>
    {
        var dtype = StoredTensors.DTypeOf<T>();
        int size = StoredTensor.SizeOf(dtype);
        var json = new StringBuilder("{");
        long offset = 0;
        bool first = true;
        if (metadata is { Count: > 0 })
        {
            json.Append("\"__metadata__\":{");
            json.Append(string.Join(",", metadata.Select(kv => $"{JsonText.Quote(kv.Key)}:{JsonText.Quote(kv.Value)}")));
            json.Append('}');
            first = false;
        }
        foreach (var (name, t) in tensors)
        {
            if (name == "__metadata__") throw new ArgumentException("A tensor may not be called __metadata__.");
            long bytes = (long)t.Length * size;
            if (!first) json.Append(',');
            first = false;
            json.Append(CultureInfo.InvariantCulture,
                $"{JsonText.Quote(name)}:{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", t.ShapeArray())}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        json.Append('}');
        // Pad the header with spaces to a multiple of 8 bytes, as the reference writer does.
        while ((Encoding.UTF8.GetByteCount(json.ToString()) % 8) != 0) json.Append(' ');
        byte[] header = Encoding.UTF8.GetBytes(json.ToString());
        var result = new byte[8 + header.Length + offset];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)header.Length);
        header.CopyTo(result, 8);
        int pos = 8 + header.Length;
        foreach (var (_, t) in tensors)
        {
            foreach (var v in t.Data)
            {
                if (size == 8) BinaryPrimitives.WriteDoubleLittleEndian(result.AsSpan(pos), double.CreateTruncating(v));
                else BinaryPrimitives.WriteSingleLittleEndian(result.AsSpan(pos), float.CreateTruncating(v));
                pos += size;
            }
        }
        return result;
    }

    private static InvalidDataException SizeOverflow(string source, string name, int[] shape, StoredDType dtype) =>
        Bad(source, $"tensor '{name}' has shape {ShapeUtil.Format(shape)} of {dtype}, whose size in bytes overflows 64 bits");

    private static InvalidDataException Bad(string source, string what) => new($"{source}: malformed safetensors: {what}.");
}

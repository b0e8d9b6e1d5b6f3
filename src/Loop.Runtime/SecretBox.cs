namespace Loop.Runtime;

using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

/// <summary>
/// Seals connector credentials for the store (AES-256-GCM). The key is <c>LOOP_SECRET_KEY</c>
/// (base64 of 32 bytes: every node of a cluster needs the same one) or, on one node, a key file made
/// on first use in <c>LOOP_HOME/secrets</c>, which is never mounted into containers. A sealed value
/// names its key by a fingerprint, so a node with another key says so instead of failing obscurely.
/// </summary>
public sealed class SecretBox
{
    public const string KeyVariable = "LOOP_SECRET_KEY";
    private const string Version = "v1";

    private readonly byte[] _key;
    private readonly string _fingerprint;

    private SecretBox(byte[] key)
    {
        _key = key;
        _fingerprint = Convert.ToHexStringLower(SHA256.HashData(key))[..12];
    }

    /// <summary>Where the key came from, for the start-up log (never the key).</summary>
    public string Origin { get; private init; } = "";

    /// <summary>The key of <paramref name="fromEnvironment"/> when set, else the one in <paramref name="keyFile"/> (made when missing).</summary>
    public static SecretBox Open(string? fromEnvironment, string keyFile)
    {
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return new SecretBox(Decode(fromEnvironment, KeyVariable)) { Origin = KeyVariable };
        }
        if (!File.Exists(keyFile))
        {
            PrivateFiles.Write(keyFile, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) + "\n");
        }
        return new SecretBox(Decode(File.ReadAllText(keyFile), keyFile)) { Origin = keyFile };
    }

    private static byte[] Decode(string text, string origin)
    {
        try
        {
            var key = Convert.FromBase64String(text.Trim());
            if (key.Length == 32)
            {
                return key;
            }
        }
        catch (FormatException)
        {
        }
        throw new InvalidOperationException($"{origin} must hold a key of 32 bytes in base64 (make one with: openssl rand -base64 32)");
    }

    public string Seal(IReadOnlyDictionary<string, string> secrets)
    {
        var plain = JsonSerializer.SerializeToUtf8Bytes(secrets);
        var nonce = RandomNumberGenerator.GetBytes(AesGcm.NonceByteSizes.MaxSize);
        var cipher = new byte[plain.Length];
        var tag = new byte[AesGcm.TagByteSizes.MaxSize];
        using (var aes = new AesGcm(_key, tag.Length))
        {
            aes.Encrypt(nonce, plain, cipher, tag, Associated());
        }
        return $"{Version}.{_fingerprint}.{Convert.ToBase64String([.. nonce, .. tag, .. cipher])}";
    }

    /// <exception cref="InvalidOperationException">The value was sealed with another key, or is damaged.</exception>
    public IReadOnlyDictionary<string, string> Open(string sealedSecrets)
    {
        var parts = sealedSecrets.Split('.');
        if (parts.Length != 3 || parts[0] != Version)
        {
            throw new InvalidOperationException("the stored credentials are in a form this version of Loop cannot read");
        }
        if (parts[1] != _fingerprint)
        {
            throw new InvalidOperationException($"the credentials were sealed with another secret key than this node's ({Origin}): "
                + $"give every node the same {KeyVariable}, or enter the credentials again");
        }
        var bytes = Convert.FromBase64String(parts[2]);
        var nonceSize = AesGcm.NonceByteSizes.MaxSize;
        var tagSize = AesGcm.TagByteSizes.MaxSize;
        var plain = new byte[bytes.Length - nonceSize - tagSize];
        try
        {
            using var aes = new AesGcm(_key, tagSize);
            aes.Decrypt(bytes.AsSpan(0, nonceSize), bytes.AsSpan(nonceSize + tagSize), bytes.AsSpan(nonceSize, tagSize), plain, Associated());
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new InvalidOperationException("the stored credentials are damaged: enter them again");
        }
        return JsonSerializer.Deserialize<Dictionary<string, string>>(plain)!;
    }

    private static byte[] Associated() => Encoding.ASCII.GetBytes("loop connector secrets " + Version);
}

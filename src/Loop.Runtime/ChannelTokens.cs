namespace Loop.Runtime;

using System.Security.Cryptography;
using System.Text;

/// <summary>
/// Per-channel bearer tokens for agents: <c>loopch.&lt;channel id&gt;.&lt;mac&gt;</c>, where the mac is an
/// HMAC-SHA256 of the channel id under a key that never leaves the daemon's machine (a 0600 file
/// under the Loop home, not the store). Stateless to check, and one channel's token says nothing
/// about another's.
/// </summary>
public sealed class ChannelTokens
{
    private const string Prefix = "loopch.";
    private readonly byte[] _key;

    public ChannelTokens(byte[] key)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(key.Length, 32);
        _key = key;
    }

    /// <summary>Reads the key from <paramref name="path"/>, making it (owner-only) the first time.</summary>
    public static ChannelTokens FromKeyFile(string path)
    {
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var fresh = RandomNumberGenerator.GetBytes(32);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            try
            {
                using var file = new FileStream(path, options);
                file.Write(fresh);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process made it first: use theirs.
            }
        }
        return new ChannelTokens(File.ReadAllBytes(path));
    }

    public string TokenFor(string channelId) => Prefix + channelId + "." + Mac(channelId);

    /// <summary>The channel a valid token belongs to, or null.</summary>
    public string? ChannelOf(string token)
    {
        if (!token.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }
        var body = token[Prefix.Length..];
        var dot = body.LastIndexOf('.');
        if (dot <= 0)
        {
            return null;
        }
        var channelId = body[..dot];
        var expected = Encoding.ASCII.GetBytes(Mac(channelId));
        var given = Encoding.ASCII.GetBytes(body[(dot + 1)..]);
        return CryptographicOperations.FixedTimeEquals(expected, given) ? channelId : null;
    }

    private string Mac(string channelId) =>
        Convert.ToBase64String(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(channelId)))
            .TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

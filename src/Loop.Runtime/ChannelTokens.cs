namespace Loop.Runtime;

using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

/// <summary>
/// The credentials agent containers get: one random bearer token per run (<c>loopch.…</c>), valid
/// for that run's channel only and only while the run lasts. Only SHA-256 hashes are held, in
/// memory: a run's container talks to the node that runs it, and a daemon restart ends every
/// run, so nothing needs to outlive the process. A token copied out of a container is useless
/// once its run has ended, and an operator can end a channel's tokens at once.
/// </summary>
public sealed class ChannelTokens
{
    public const string Prefix = "loopch.";
    private readonly ConcurrentDictionary<string, Grant> _grants = new(StringComparer.Ordinal);

    /// <summary>A fresh token for <paramref name="runId"/> of <paramref name="channelId"/>; it works until
    /// <see cref="EndRun"/> or <see cref="RevokeChannel"/>.</summary>
    public string MintForRun(string channelId, string runId)
    {
        var token = Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        _grants[Hash(token)] = new Grant(channelId, runId);
        return token;
    }

    /// <summary>Ends the tokens of a run that has finished.</summary>
    public void EndRun(string runId)
    {
        foreach (var (hash, grant) in _grants)
        {
            if (grant.RunId == runId)
            {
                _grants.TryRemove(hash, out _);
            }
        }
    }

    /// <summary>Ends every live token of a channel; returns how many there were.</summary>
    public int RevokeChannel(string channelId)
    {
        var revoked = 0;
        foreach (var (hash, grant) in _grants)
        {
            if (grant.ChannelId == channelId && _grants.TryRemove(hash, out _))
            {
                revoked++;
            }
        }
        return revoked;
    }

    /// <summary>The channel a live token belongs to, or null.</summary>
    public string? ChannelOf(string token) =>
        token.StartsWith(Prefix, StringComparison.Ordinal) && _grants.TryGetValue(Hash(token), out var grant) ? grant.ChannelId : null;

    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private sealed record Grant(string ChannelId, string RunId);
}

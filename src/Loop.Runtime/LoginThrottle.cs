namespace Loop.Runtime;

using System.Globalization;

/// <summary>
/// Failed logins per account in a fixed window, whatever address or listener they come from, so
/// guesses spread over many addresses still stop at the account's limit. An attempt counts from
/// the moment it starts (parallel guesses cannot overrun the limit) and is given back when it
/// succeeds. Names that are not accounts are counted the same way, so the answer says nothing
/// about which accounts exist.
/// </summary>
public sealed class LoginThrottle(int failuresPerWindow, TimeSpan window, TimeProvider time)
{
    // Enough for every real account; a spray of made-up names beyond it starts the count over.
    private const int TrackedLimit = 10_000;
    private readonly object _gate = new();
    private readonly Dictionary<string, Attempts> _accounts = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Counts an attempt on <paramref name="account"/>.</summary>
    /// <exception cref="LoopTooManyRequestsException">The account had too many failures in this window.</exception>
    public void Begin(string account)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (!_accounts.TryGetValue(account, out var current) || now >= current.Until)
            {
                if (_accounts.Count >= TrackedLimit)
                {
                    _accounts.Clear();
                }
                current = new Attempts(0, now + window);
            }
            if (current.Count >= failuresPerWindow)
            {
                var wait = current.Until - now;
                var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                throw new LoopTooManyRequestsException($"too many failed logins for this account; try again in {seconds} s", wait);
            }
            _accounts[account] = current with { Count = current.Count + 1 };
        }
    }

    /// <summary>The attempt <see cref="Begin"/> counted succeeded: it is not a failure.</summary>
    public void Succeeded(string account)
    {
        lock (_gate)
        {
            if (_accounts.TryGetValue(account, out var current) && current.Count > 0)
            {
                _accounts[account] = current with { Count = current.Count - 1 };
            }
        }
    }

    private sealed record Attempts(int Count, DateTimeOffset Until);
}

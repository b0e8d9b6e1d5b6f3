namespace Loop.Runtime;

using Loop.Domain;
using Microsoft.Extensions.Logging;

/// <summary>
/// Whether the store can be read, as its last probe found: probed again in the background when a
/// health read finds the answer stale, so health stays instant and a store that breaks while the
/// daemon runs shows within seconds.
/// </summary>
public sealed class StoreProbe(ILoopStore store, string kind, string location, TimeProvider time, ILogger<StoreProbe> logger)
{
    private static readonly TimeSpan RecheckAfter = TimeSpan.FromSeconds(2);
    private readonly object _gate = new();
    private StoreHealth _health = new(false, kind, location, "not started");
    private DateTimeOffset _checkedAt = DateTimeOffset.MinValue;
    private int _checking;

    /// <summary>The last answer; "not started" until the first <see cref="CheckAsync"/>.</summary>
    public StoreHealth Health
    {
        get
        {
            lock (_gate)
            {
                // Before the first check the store may not be migrated yet: nothing to probe.
                if (_checkedAt != DateTimeOffset.MinValue && time.GetUtcNow() - _checkedAt > RecheckAfter
                    && Interlocked.Exchange(ref _checking, 1) == 0)
                {
                    _ = Task.Run(() => CheckAsync(CancellationToken.None));
                }
                return _health;
            }
        }
    }

    /// <summary>Probes the store and records the answer; returns whether it can be read.</summary>
    public async Task<bool> CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            StoreHealth health;
            try
            {
                await store.PingAsync(cancellationToken);
                health = new StoreHealth(true, kind, location, null);
            }
            catch (StoreUnavailableException error)
            {
                health = new StoreHealth(false, kind, location, error.Message);
            }
            catch (ObjectDisposedException)
            {
                health = new StoreHealth(false, kind, location, "closed: loop serve is stopping");
            }
            lock (_gate)
            {
                var first = _checkedAt == DateTimeOffset.MinValue;
                if (!health.Ok && (first || _health.Ok))
                {
                    logger.LogError("The store at {Location} cannot be read: {Error}. Requests that need it fail until it can.", location, health.Error);
                }
                else if (health.Ok && !first && !_health.Ok)
                {
                    logger.LogInformation("The store at {Location} can be read again", location);
                }
                _health = health;
                _checkedAt = time.GetUtcNow();
            }
            return health.Ok;
        }
        finally
        {
            Interlocked.Exchange(ref _checking, 0);
        }
    }
}

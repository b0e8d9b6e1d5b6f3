namespace Loop.Testing;

/// <summary>Waits on a condition with a generous deadline, never on a sleep of a guessed length:
/// the nodes, doubles and mail servers of the tests work on their own schedules.</summary>
public static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static Task WaitAsync(Func<bool> condition, string what, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        WaitAsync(() => Task.FromResult(condition()), what, timeout, cancellationToken);

    /// <exception cref="TimeoutException">The condition still failed at the deadline; the message names <paramref name="what"/>.</exception>
    public static async Task WaitAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }
            await Task.Delay(20, cancellationToken);
        }
    }
}

namespace Loop.Domain.Tests;

/// <summary>Waits on a condition, never on a sleep of a guessed length: the grains work on their own schedulers.</summary>
internal static class Eventually
{
    public static Task Until(Func<bool> condition, string what) => Until(() => Task.FromResult(condition()), what);

    public static async Task Until(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"gave up waiting for {what}");
            }
            await Task.Delay(10);
        }
    }
}

namespace Loop.Domain.Tests;

using Loop.Runtime;

public sealed class ContainerWorkerPoolTests
{
    [Fact]
    public async Task Slots_are_capped_and_waiters_are_served_in_arrival_order()
    {
        var pool = new ContainerWorkerPool(2);
        var a = await pool.AcquireAsync("a", CancellationToken.None);
        var b = await pool.AcquireAsync("b", CancellationToken.None);
        var third = pool.AcquireAsync("x", CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(third.IsCompleted); // capped at 2
        b.Dispose();
        b = await third;
        // From here one slot is busy for the whole test, so waiters are granted one at a time
        // and the order they record is the order they were served.
        var order = new List<string>();
        var waiters = new[] { "c", "d", "e" }.Select(async name =>
        {
            using var lease = await pool.AcquireAsync(name, CancellationToken.None);
            lock (order) { order.Add(name); }
        }).ToList();
        await Task.Delay(50);
        Assert.Equal(2, pool.InUse);
        Assert.Equal(3, pool.Waiting);
        Assert.Empty(order);

        a.Dispose();
        await Task.WhenAll(waiters);
        Assert.Equal(["c", "d", "e"], order);
        b.Dispose();
        Assert.Equal(0, pool.InUse);
        Assert.Equal(0, pool.Waiting);
    }

    [Fact]
    public async Task A_cancelled_waiter_leaves_the_queue_and_the_slot_goes_to_the_next()
    {
        var pool = new ContainerWorkerPool(1);
        var held = await pool.AcquireAsync("a", CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var cancelled = pool.AcquireAsync("b", cancel.Token).AsTask();
        var next = pool.AcquireAsync("c", CancellationToken.None).AsTask();

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.Equal(1, pool.Waiting);

        held.Dispose();
        using var lease = await next;
        Assert.Equal(1, pool.InUse);
        held.Dispose(); // a second dispose frees nothing more
        Assert.Equal(1, pool.InUse);
    }
}

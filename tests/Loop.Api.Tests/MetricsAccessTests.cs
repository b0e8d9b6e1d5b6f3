namespace Loop.Api.Tests;

using System.Net;
using Microsoft.AspNetCore.Http;

/// <summary>Who gets /metrics without a token: a program on the daemon's machine, not a proxy there
/// relaying someone else, nor anyone from another address. (Over HTTP: Loop.Integration.Tests' MetricsTests.)</summary>
public sealed class MetricsAccessTests
{
    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.0.0.2", true)]
    [InlineData("::1", true)]
    [InlineData("::ffff:127.0.0.1", true)]
    [InlineData("192.0.2.7", false)]
    [InlineData("10.0.0.5", false)]
    [InlineData("::ffff:192.0.2.7", false)]
    [InlineData("fd00::1", false)]
    public void A_call_from_a_loopback_address_is_from_this_machine(string address, bool local) =>
        Assert.Equal(local, ApiCallers.IsFromThisMachine(Call(address)));

    [Theory]
    [InlineData("X-Forwarded-For", "203.0.113.9")]
    [InlineData("Forwarded", "for=203.0.113.9")]
    [InlineData("X-Real-IP", "203.0.113.9")]
    public void A_call_a_proxy_on_this_machine_relays_is_not(string header, string value)
    {
        var call = Call("127.0.0.1");
        call.Request.Headers[header] = value;
        Assert.False(ApiCallers.IsFromThisMachine(call));
    }

    [Fact]
    public void A_call_on_the_unix_socket_is_not() =>
        // Agents' containers reach the daemon there: they are not the machine's programs.
        Assert.False(ApiCallers.IsFromThisMachine(new DefaultHttpContext()));

    private static DefaultHttpContext Call(string remote)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(remote);
        context.Connection.LocalIpAddress = IPAddress.Loopback;
        return context;
    }
}

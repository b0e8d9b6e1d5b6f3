namespace Loop.WhatsApp.Tests;

using Microsoft.Extensions.Logging.Abstractions;

/// <summary>The Cloud API client against the double: throttling waited out, refusals explained.</summary>
public sealed class CloudApiTests
{
    [Fact]
    public async Task A_throttled_send_is_sent_once_the_limit_allows_and_a_refused_token_says_why()
    {
        await using var whatsapp = await WhatsAppDouble.StartAsync();
        using var api = new WhatsAppCloudApi(new Uri(whatsapp.ApiUrl), WhatsAppDouble.PhoneNumberId, WhatsAppDouble.AccessToken, TimeProvider.System, NullLogger.Instance);
        whatsapp.FailNext(429, 130429, "(#130429) Rate limit hit");

        var id = await api.SendTextAsync("15551234567", "after the limit", "wamid.trigger", CancellationToken.None);

        Assert.StartsWith("wamid.", id);
        Assert.Equal(new SentMessage("15551234567", "after the limit", "wamid.trigger"), Assert.Single(whatsapp.Sent));
        Assert.Equal($"{WhatsAppDouble.DisplayNumber} (Loop Test)", await api.DescribeAsync(CancellationToken.None));

        using var wrong = new WhatsAppCloudApi(new Uri(whatsapp.ApiUrl), WhatsAppDouble.PhoneNumberId, "expired", TimeProvider.System, NullLogger.Instance);
        var refused = await Assert.ThrowsAsync<WhatsAppApiException>(() => wrong.DescribeAsync(CancellationToken.None));
        Assert.Contains("(401, code 190): Invalid OAuth access token", refused.Message);
    }
}

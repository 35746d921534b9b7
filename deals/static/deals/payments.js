// Pay with a card through Stripe.js (real, or localstripe's in the tests).
//
// 1. The card goes to Stripe, never to the fair: a SetupIntent from POST /api/v1/payments/setup
//    saves it with stripe.confirmCardSetup and gives back a payment method id.
// 2. The fair creates and confirms the PaymentIntent with that payment method. The request
//    carries an Idempotency-Key that is kept until the fair has answered, so pressing the
//    button again after a dropped connection never pays twice.
// 3. If the card asks for 3-D Secure, stripe.confirmCardPayment finishes it here.
// 4. Stripe's webhook settles the payment on the server; the page waits for that, then reloads.
import { callApi, errorMessage, newKey } from "/static/js/api.js";

(function () {
  const form = document.querySelector("form.card-payment");
  if (!form || typeof Stripe === "undefined") {
    return;
  }
  const text = JSON.parse(form.querySelector(".card-payment-text").textContent);
  const status = form.querySelector(".card-payment-status");
  const button = form.querySelector("button[type=submit]");
  const stripe = Stripe(form.dataset.publishableKey);
  const card = stripe.elements().create("card", {hidePostalCode: false});
  card.mount(form.querySelector(".card-element"));
  let attempt = null;

  function say(message, kind) {
    status.textContent = message;
    status.className = "card-payment-status" + (kind ? " card-payment-" + kind : "");
  }

  async function api(method, url, body, key) {
    let answer;
    try {
      answer = await callApi(method, url, { body, key });
    } catch {
      throw new Error(text.offline);
    }
    if (!answer.ok) throw new Error(errorMessage(answer.data) || text.failed);
    return answer.data;
  }

  function sleep(milliseconds) {
    return new Promise((resolve) => setTimeout(resolve, milliseconds));
  }

  async function settled(payment) {
    for (let tries = 0; payment.status === "pending" && tries < 60; tries += 1) {
      await sleep(1000);
      payment = await api("GET", "/api/v1/payments/" + payment.id);
    }
    return payment;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const payUrl = form.elements.pay_url.value;
    button.disabled = true;
    say(text.saving);
    try {
      const setup = await api("POST", "/api/v1/payments/setup");
      const saved = await stripe.confirmCardSetup(setup.client_secret,
                                                  {payment_method: {card: card}});
      if (saved.error) {
        throw new Error(saved.error.message || text.declined);
      }
      const method = saved.setupIntent.payment_method;
      if (!attempt || attempt.url !== payUrl) {
        attempt = {url: payUrl, key: newKey()};
      }
      say(text.paying);
      let payment = await api("POST", payUrl,
                              {payment_method: typeof method === "string" ? method : method.id},
                              attempt.key);
      attempt = null;
      if (payment.requires_action) {
        const finished = await stripe.confirmCardPayment(payment.client_secret);
        if (finished.error) {
          throw new Error(finished.error.message || text.declined);
        }
      }
      say(text.waiting);
      payment = await settled(payment);
      if (payment.status === "succeeded") {
        say(text.succeeded, "success");
        setTimeout(() => window.location.reload(), 1200);
        return;
      }
      if (payment.status === "failed") {
        throw new Error(payment.failure_message || text.declined);
      }
      say(text.processing);
    } catch (error) {
      say(error.message, "error");
      button.disabled = false;
    }
  });
})();
